"""Persistence of the notifications this service owes users (plus its inbox)."""

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from signup_shared.inbox import InboxMixin

MAX_ERROR_LENGTH = 2_000


class Base(DeclarativeBase):
    pass


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def _now() -> datetime:
    return datetime.now(UTC)


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


class Notification(Base):
    """One message owed to a user on one channel, caused by one event.

    ``template_data`` holds what the template needs, so a sweeper can deliver it without the event.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("causing_event_id", "channel", name="uq_notifications_event_channel"),
        Index(
            "ix_notifications_pending", "updated_at", postgresql_where=text("status = 'pending'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    channel: Mapped[Channel] = mapped_column(
        Enum(Channel, name="notification_channel", values_callable=_values)
    )
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(100))
    template_data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[NotificationStatus] = mapped_column(
        Enum(NotificationStatus, name="notification_status", values_callable=_values),
        default=NotificationStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    causing_event_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_pending(self) -> bool:
        return self.status is NotificationStatus.PENDING

    def record_attempt(self, when: datetime, error: str | None = None) -> None:
        """Count one try at sending; ``error`` says why it did not succeed (None if it did)."""
        self.attempts = (self.attempts or 0) + 1
        self.last_error = error[:MAX_ERROR_LENGTH] if error is not None else None
        self.updated_at = when

    def mark_sent(self, provider_message_id: str, when: datetime) -> None:
        self.status = NotificationStatus.SENT
        self.provider_message_id = provider_message_id
        self.sent_at = when
        self.updated_at = when

    def mark_failed(self, error: str) -> None:
        """Give up: the provider refused for good; the row keeps the reason."""
        self.status = NotificationStatus.FAILED
        self.last_error = error[:MAX_ERROR_LENGTH]


class InboxMessage(InboxMixin, Base):
    pass
