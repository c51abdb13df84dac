"""The idempotent consumer: every handled event id is recorded with the handler's effects."""

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, Uuid, bindparam, delete, func, inspect, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.dml import ReturningInsert


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
    One row, so a plain ``INSERT … VALUES … ON CONFLICT DO NOTHING RETURNING`` (no array to
    encode and unnest: the cheaper statement for the batches of one that low rates bring).
    """
    statement = _CLAIM_ONE_STATEMENTS.get(model)
    if statement is None:
        statement = _CLAIM_ONE_STATEMENTS[model] = _claim_one_statement(model)
    result = session.execute(statement, {"consumer": consumer, "event_id": event_id})
    return result.first() is not None


def claim_many(
    session: Session, model: type[InboxMixin], consumer: str, event_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Record all events in one statement; returns the ids that were new (the rest are duplicates).

    Ids are inserted in sorted order so that two consumers claiming overlapping batches take the
    index locks in the same order and cannot deadlock each other. The statement is the same for
    any number of ids (one array parameter), so SQLAlchemy compiles it once per inbox table.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return set()
    statement = _CLAIM_STATEMENTS.get(model)
    if statement is None:
        statement = _CLAIM_STATEMENTS[model] = _claim_statement(model)
    result = session.execute(statement, {"consumer": consumer, "event_ids": ids})
    return {row[0] for row in result.all()}


_CLAIM_STATEMENTS: dict[type[InboxMixin], ReturningInsert[Any]] = {}
_CLAIM_ONE_STATEMENTS: dict[type[InboxMixin], ReturningInsert[Any]] = {}


def _claim_one_statement(model: type[InboxMixin]) -> ReturningInsert[Any]:
    """``INSERT … VALUES (:consumer, :event_id) ON CONFLICT DO NOTHING RETURNING event_id``."""
    table = inspect(model).local_table
    return (
        insert(table)
        .values(
            consumer=bindparam("consumer", type_=String()),
            event_id=bindparam("event_id", type_=Uuid()),
        )
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )


def _claim_statement(model: type[InboxMixin]) -> ReturningInsert[Any]:
    """``INSERT … SELECT :consumer, unnest(:event_ids) … ON CONFLICT DO NOTHING RETURNING``."""
    table = inspect(model).local_table
    ids = bindparam("event_ids", type_=ARRAY(Uuid()))
    claimed = func.unnest(ids).table_valued("event_id").render_derived("claimed")
    rows = select(bindparam("consumer", type_=String()), claimed.c.event_id).order_by(
        claimed.c.event_id
    )
    return (
        insert(table)
        .from_select(["consumer", "event_id"], rows)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )


def prune(session: Session, model: type[InboxMixin], retention: timedelta) -> int:
    """Forget events handled longer ago than ``retention``; returns how many rows went."""
    result = session.execute(delete(model).where(model.received_at < func.now() - retention))
    return int(getattr(result, "rowcount", 0) or 0)
