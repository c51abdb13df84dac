"""Persistence of audit (plus its inbox): every statement audit runs.

``audit_users`` keeps one row per user: the first ``UserSignedUp`` event seen for them (its id,
when it happened, when audit recorded it). The user id is the natural key, so a user is recorded
once however many events name them (a v1 and a v2 copy of one signup, a replay, a forgery).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import DateTime, Text, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from signup_shared.inbox import InboxMixin


class Base(DeclarativeBase):
    pass


class AuditUser(Base):
    """A user audit has seen sign up, with the first event that said so."""

    __tablename__ = "audit_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    first_event_id: Mapped[uuid.UUID]
    plan: Mapped[str] = mapped_column(Text)
    signed_up_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class InboxMessage(InboxMixin, Base):
    pass


# A constant statement, so SQLAlchemy compiles it once and a batch of any size is one round
# trip (``insert(AuditUser).values(rows)`` was compiled anew for every batch: a quarter of the
# consumer's Python time at 20 signups/s). The users are inserted in user id order, so
# concurrent batches take their index locks alike; a user named twice keeps the first row.
ADD_USERS = text(
    """
    INSERT INTO audit_users (user_id, first_event_id, plan, signed_up_at)
    SELECT added.user_id, added.first_event_id, added.plan, added.signed_up_at
    FROM unnest(
        CAST(:user_ids AS uuid[]),
        CAST(:event_ids AS uuid[]),
        CAST(:plans AS text[]),
        CAST(:signed_up_at AS timestamptz[])
    ) WITH ORDINALITY AS added(user_id, first_event_id, plan, signed_up_at, position)
    ORDER BY added.user_id, added.position
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
    """
)


def add_users(session: Session, rows: Sequence[dict[str, object]]) -> int:
    """Insert each user not recorded yet (``user_id``, ``first_event_id``, ``plan``,
    ``signed_up_at``), in user id order (concurrent batches lock alike): one statement.
    Returns how many were new."""
    if not rows:
        return 0
    result = session.execute(
        ADD_USERS,
        {
            "user_ids": [row["user_id"] for row in rows],
            "event_ids": [row["first_event_id"] for row in rows],
            "plans": [row["plan"] for row in rows],
            "signed_up_at": [row["signed_up_at"] for row in rows],
        },
    )
    return len(result.all())


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditUser)) or 0)


def find_user(session: Session, user_id: uuid.UUID) -> AuditUser | None:
    return session.get(AuditUser, user_id)
