"""Persistence of the notifications this service owes users (plus its inbox).

Every statement is built once at import (SQLAlchemy caches its compiled form) and runs on the
session's connection: Core rows, no ORM identity map or flush on these hot paths.
"""

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Enum,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from signup_shared.inbox import InboxMixin

MAX_ERROR_LENGTH = 2_000
USER_KIND_UNIQUE = "uq_notifications_user_kind"


class Base(DeclarativeBase):
    pass


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


class Notification(Base):
    """One message owed to a user on one channel, caused by one event.

    ``template_data`` holds what the template needs, so a sweeper can deliver it without the event.
    A user is owed each kind of message (``template``) on a channel once, whichever event asked.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("causing_event_id", "channel", name="uq_notifications_event_channel"),
        UniqueConstraint("user_id", "channel", "template", name=USER_KIND_UNIQUE),
        Index(
            "ix_notifications_pending", "updated_at", postgresql_where=text("status = 'pending'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    channel: Mapped[Channel] = mapped_column(
        Enum(Channel, name="notification_channel", values_callable=_values)
    )
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(100))
    template_data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[NotificationStatus] = mapped_column(
        Enum(NotificationStatus, name="notification_status", values_callable=_values)
    )
    attempts: Mapped[int] = mapped_column(Integer)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    causing_event_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WelcomedUser(Base):
    """A user whose welcome is decided: the first ``UserSignedUp`` for the user claimed it.

    The natural key of the welcome. A later event for the same user (another event id: a
    replayed history, a second contract version, a forgery) finds the claim taken and is owed
    nothing, whatever email or phone it carries.
    """

    __tablename__ = "welcomed_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID]
    welcomed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InboxMessage(InboxMixin, Base):
    pass


@dataclass(frozen=True)
class Owed:
    """One pending notification as delivering needs it (``attempts``: this attempt's number)."""

    id: uuid.UUID
    channel: Channel
    recipient: str
    template: str
    template_data: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class PendingRef:
    """Which event a pending notification answers for, and on which channel it goes."""

    event_id: uuid.UUID
    id: uuid.UUID
    channel: Channel


_TABLE: Table = Base.metadata.tables[Notification.__tablename__]
_C = _TABLE.c

# A user owed this kind of message already (another event for the same user), or an event
# recorded again after its inbox row was pruned: nothing new is owed, nothing fails.
_OWE = insert(_TABLE).on_conflict_do_nothing()

# Claims the welcome of each user not claimed before, in the caller's transaction: the users it
# returns are the ones this transaction decides. A concurrent claim of the same user (another
# consumer process) waits on the key's lock and, once that commits, finds it taken; sorting
# keeps two batches with users in common from deadlocking.
_CLAIM_WELCOMES = text(
    """
    INSERT INTO welcomed_users (user_id, event_id, welcomed_at)
    SELECT claim.user_id, claim.event_id, :now
    FROM unnest(CAST(:user_ids AS uuid[]), CAST(:event_ids AS uuid[])) AS claim(user_id, event_id)
    ORDER BY claim.user_id
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
    """
)

_PENDING_OF_EVENTS = (
    select(_C.causing_event_id, _C.id, _C.channel)
    .where(
        _C.causing_event_id.in_(bindparam("event_ids", expanding=True)),
        _C.status == NotificationStatus.PENDING,
    )
    .order_by(_C.causing_event_id, _C.channel)
)

_STALE_PENDING = (
    select(_C.causing_event_id, _C.id, _C.channel)
    .where(_C.status == NotificationStatus.PENDING, _C.updated_at < bindparam("older_than"))
    .order_by(_C.updated_at)
    .limit(bindparam("limit"))
)

# The row lock keeps a second deliverer away while the provider is called; SKIP LOCKED makes
# that deliverer move on instead of waiting, and the status check leaves a sent row alone.
_LOCK_PENDING = (
    select(_C.channel, _C.recipient, _C.template, _C.template_data, _C.attempts)
    .where(_C.id == bindparam("notification_id"), _C.status == NotificationStatus.PENDING)
    .with_for_update(skip_locked=True)
)

# The SET clause comes from the parameters' keys: one cached statement per outcome.
_RECORD_ATTEMPT = update(_TABLE).where(_C.id == bindparam("notification_id"))

_PENDING_BY_CHANNEL = (
    select(_C.channel, func.count(), func.min(_C.created_at))
    .where(_C.status == NotificationStatus.PENDING)
    .group_by(_C.channel)
)


def notification_row(
    *,
    user_id: uuid.UUID,
    channel: Channel,
    recipient: str,
    template: str,
    template_data: dict[str, Any],
    causing_event_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    """The row of a new pending notification (the one row builder of this table)."""
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "template_data": template_data,
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "provider_message_id": None,
        "last_error": None,
        "causing_event_id": causing_event_id,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
    }


def claim_welcomes(
    session: Session, first_events: Mapping[uuid.UUID, uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """Claim the welcome of each user (``user_id -> event_id``, one event per user) for that
    event; the users claimed now (a user claimed before, by any event, is left out)."""
    if not first_events:
        return set()
    rows = session.connection().execute(
        _CLAIM_WELCOMES,
        {"user_ids": list(first_events), "event_ids": list(first_events.values()), "now": now},
    )
    return {user_id for (user_id,) in rows}


def add_notifications(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows in one statement; rows a user is already owed are left out silently."""
    if rows:
        session.connection().execute(_OWE, list(rows))


def pending_of_events(session: Session, event_ids: Sequence[uuid.UUID]) -> list[PendingRef]:
    """The pending notifications of these events, by event, email before SMS."""
    if not event_ids:
        return []
    rows = session.connection().execute(_PENDING_OF_EVENTS, {"event_ids": list(event_ids)})
    return [PendingRef(event_id, id_, Channel(channel)) for event_id, id_, channel in rows]


def stale_pending(session: Session, older_than: datetime, limit: int) -> list[PendingRef]:
    """Pending notifications nobody touched since ``older_than``, oldest first."""
    rows = session.connection().execute(_STALE_PENDING, {"older_than": older_than, "limit": limit})
    return [PendingRef(event_id, id_, Channel(channel)) for event_id, id_, channel in rows]


def lock_pending(session: Session, notification_id: uuid.UUID) -> Owed | None:
    """Lock the notification's row if it is pending and nobody else holds it; else None."""
    row = session.connection().execute(_LOCK_PENDING, {"notification_id": notification_id}).first()
    if row is None:
        return None
    channel, recipient, template, template_data, attempts = row
    return Owed(notification_id, Channel(channel), recipient, template, template_data, attempts + 1)


def record_sent(session: Session, owed: Owed, provider_message_id: str, when: datetime) -> None:
    _record(
        session,
        owed,
        when,
        status=NotificationStatus.SENT,
        last_error=None,
        provider_message_id=provider_message_id,
        sent_at=when,
    )


def record_retry_later(session: Session, owed: Owed, error: str, when: datetime) -> None:
    """The attempt failed but may succeed later: counted, stays pending."""
    _record(session, owed, when, last_error=error[:MAX_ERROR_LENGTH])


def record_failed(session: Session, owed: Owed, error: str, when: datetime) -> None:
    """Given up for good: the row keeps the reason."""
    _record(
        session, owed, when, status=NotificationStatus.FAILED, last_error=error[:MAX_ERROR_LENGTH]
    )


def _record(session: Session, owed: Owed, when: datetime, **values: Any) -> None:
    session.connection().execute(
        _RECORD_ATTEMPT,
        {"notification_id": owed.id, "attempts": owed.attempts, "updated_at": when, **values},
    )


def pending_by_channel(session: Session) -> dict[Channel, tuple[int, datetime]]:
    """How many notifications wait on each channel, and since when the oldest waits."""
    rows = session.connection().execute(_PENDING_BY_CHANNEL)
    return {Channel(channel): (count, oldest) for channel, count, oldest in rows}
