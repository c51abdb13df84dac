"""The idempotent consumer: every handled event id is recorded with the handler's effects."""

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column


class InboxMixin:
    """(consumer, event id) of every event a consumer has handled; the primary key forbids twice."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


def claim(session: Session, model: type[InboxMixin], consumer: str, event_id: uuid.UUID) -> bool:
    """Record the event as handled by ``consumer``; False if it already was (a duplicate).

    A concurrent claim of the same id waits for the first transaction and then sees the conflict.
    """
    statement = (
        insert(model)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(model.event_id)
    )
    return session.execute(statement).first() is not None


def claim_many(
    session: Session, model: type[InboxMixin], consumer: str, event_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Record all events in one statement; returns the ids that were new (the rest are duplicates).

    Ids are inserted in sorted order so that two consumers claiming overlapping batches take the
    index locks in the same order and cannot deadlock each other.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return set()
    statement = (
        insert(model)
        .values([{"consumer": consumer, "event_id": event_id} for event_id in ids])
        .on_conflict_do_nothing()
        .returning(model.event_id)
    )
    return {row[0] for row in session.execute(statement).all()}


def prune(session: Session, model: type[InboxMixin], retention: timedelta) -> int:
    """Forget events handled longer ago than ``retention``; returns how many rows went."""
    result = session.execute(delete(model).where(model.received_at < func.now() - retention))
    return int(getattr(result, "rowcount", 0) or 0)
