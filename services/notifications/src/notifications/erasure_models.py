"""Persistence of erasures in notifications: the erased users, and the outbox of ``UserErased``.

Erasing a user deletes every notification row of the user (the addresses, names and numbers
live there: ``recipient``, ``template_data``), pending or not, and takes the user's welcome claim
(``welcomed_users``) if no event has taken it yet. The claim is the lock the signup step takes
too: a ``UserSignedUp`` handled concurrently either claimed first (its rows are committed before
the DELETE reads, and are deleted) or finds the claim taken and owes nothing. A pending row that
a deliverer holds locked while calling the provider is deleted once that send ends: a message
already on its way cannot be called back; every later one is never sent.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from notifications.models import Base
from signup_shared.events import Envelope
from signup_shared.outbox import OutboxMixin, outbox_values


class ErasedUser(Base):
    """A user erased here: nothing personal of theirs is kept or created again."""

    __tablename__ = "erased_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID]
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(OutboxMixin, Base):
    """``UserErased`` confirmations waiting for the consumer process's relay job."""


_RECORD_ERASED = text(
    """
    INSERT INTO erased_users (user_id, event_id, erased_at) VALUES (:user_id, :event_id, :now)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
    """
)
_TAKE_WELCOME_CLAIM = text(
    """
    INSERT INTO welcomed_users (user_id, event_id, welcomed_at) VALUES (:user_id, :event_id, :now)
    ON CONFLICT (user_id) DO NOTHING
    """
)
_DELETE_NOTIFICATIONS = text("DELETE FROM notifications WHERE user_id = :user_id")
_INSERT_OUTBOX = text(
    """
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    VALUES (:event_id, :routing_key, :event_type, :version, :producer, :correlation_id,
            :payload, :traceparent)
    """
)
_ERASED_AMONG = text("SELECT user_id FROM erased_users WHERE user_id = ANY(:user_ids)")


def erase_user(
    session: Session, user_id: uuid.UUID, event_id: uuid.UUID, now: datetime
) -> tuple[bool, int]:
    """Record the erasure and delete the user's notifications: (newly erased, rows deleted)."""
    connection = session.connection()
    params = {"user_id": user_id, "event_id": event_id, "now": now}
    connection.execute(_TAKE_WELCOME_CLAIM, params)
    deleted = connection.execute(_DELETE_NOTIFICATIONS, {"user_id": user_id}).rowcount
    new = connection.execute(_RECORD_ERASED, params).first() is not None
    return new, int(deleted or 0)


def add_to_outbox(session: Session, event: Envelope[Any]) -> None:
    session.connection().execute(_INSERT_OUTBOX, outbox_values(event))


def erased_among(session: Session, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not user_ids:
        return set()
    rows = session.connection().execute(_ERASED_AMONG, {"user_ids": user_ids})
    return {user_id for (user_id,) in rows}
