"""Persistence of audit (plus its inbox): every statement audit runs.

``audit_users`` keeps one row per user: the first ``UserSignedUp`` event seen for them (its id,
when it happened, when audit recorded it). The user id is the natural key, so a user is recorded
once however many events name them (a v1 and a v2 copy of one signup, a replay, a forgery).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import DateTime, Text, func, select
from sqlalchemy.dialects.postgresql import insert
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


def add_users(session: Session, rows: Sequence[dict[str, object]]) -> int:
    """Insert each user not recorded yet (``user_id``, ``first_event_id``, ``plan``,
    ``signed_up_at``), in user id order (concurrent batches lock alike): one statement.
    Returns how many were new."""
    if not rows:
        return 0
    ordered = sorted(rows, key=lambda row: str(row["user_id"]))
    statement = (
        insert(AuditUser)
        .values(ordered)
        .on_conflict_do_nothing(index_elements=[AuditUser.user_id])
        .returning(AuditUser.user_id)
    )
    return len(session.execute(statement).all())


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditUser)) or 0)


def find_user(session: Session, user_id: uuid.UUID) -> AuditUser | None:
    return session.get(AuditUser, user_id)
