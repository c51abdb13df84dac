"""Persistence of users' storage spaces (plus this service's outbox and inbox)."""

import enum
import uuid
from datetime import UTC, datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Enum, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from signup_shared.inbox import InboxMixin
from signup_shared.outbox import OutboxMixin

SPACE_USER_UNIQUE = "uq_spaces_user_id"


class Base(DeclarativeBase):
    pass


class Plan(enum.StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


class SpaceStatus(enum.StrEnum):
    READY = "ready"


def _now() -> datetime:
    return datetime.now(UTC)


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


class Space(Base):
    """One user's storage space; a user has at most one."""

    __tablename__ = "spaces"
    __table_args__ = (
        UniqueConstraint("user_id", name=SPACE_USER_UNIQUE),
        CheckConstraint("quota_bytes >= 0", name="ck_spaces_quota_bytes_non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    plan: Mapped[Plan] = mapped_column(Enum(Plan, name="plan", values_callable=_values))
    quota_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[SpaceStatus] = mapped_column(
        Enum(SpaceStatus, name="space_status", values_callable=_values),
        default=SpaceStatus.READY,
    )
    storage_path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxMessage(InboxMixin, Base):
    pass
