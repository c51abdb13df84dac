"""Every SQL statement on an outbox table: what the relay claims, marks, parks and prunes, and
what the operator command lists and retries. Built once per table."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Row,
    String,
    Text,
    Uuid,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from signup_shared.outbox.model import OutboxMixin

REASON_CHARACTERS = 1000


@dataclass(frozen=True)
class Refusal:
    """One row the client or the broker refused: counted, and parked when ``park``."""

    position: int
    reason: str
    park: bool


@dataclass(frozen=True)
class ParkedRow:
    position: int
    event_id: uuid.UUID
    event_type: str
    routing_key: str
    created_at: datetime
    parked_at: datetime
    refusals: int
    reason: str


class OutboxQueries:
    def __init__(self, model: type[OutboxMixin], batch_size: int = 500) -> None:
        table: Any = model.__table__  # type: ignore[attr-defined]
        self.table = table
        waiting = and_(table.c.sent_at.is_(None), table.c.parked_at.is_(None))
        self.pending = (
            select(
                table.c.position,
                cast(table.c.event_id, String).label("event_id"),
                table.c.routing_key,
                table.c.event_type,
                table.c.version,
                table.c.producer,
                table.c.correlation_id,
                table.c.payload,
                table.c.traceparent,
                table.c.refusals,
            )
            .where(
                waiting,
                table.c.position != all_(bindparam("held", type_=ARRAY(BigInteger))),
            )
            .order_by(table.c.position)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self.backlog = select(
            func.count(),
            func.coalesce(func.extract("epoch", func.now() - func.min(table.c.created_at)), 0),
        ).where(waiting)
        self.mark_sent = (
            update(table)
            .where(table.c.position == any_(bindparam("positions", type_=ARRAY(BigInteger))))
            .values(sent_at=func.now())
        )
        self.refuse = (
            update(table)
            .where(table.c.position == bindparam("row_position", type_=BigInteger))
            .values(
                refusals=table.c.refusals + 1,
                parked_reason=bindparam("reason", type_=Text),
                parked_at=case((bindparam("park", type_=Boolean), func.now()), else_=None),
            )
        )
        self.parked_count = select(func.count()).where(table.c.parked_at.is_not(None))
        self.parked = (
            select(
                table.c.position,
                table.c.event_id,
                table.c.event_type,
                table.c.routing_key,
                table.c.created_at,
                table.c.parked_at,
                table.c.refusals,
                table.c.parked_reason,
            )
            .where(table.c.parked_at.is_not(None), table.c.sent_at.is_(None))
            .order_by(table.c.position)
        )
        self._unpark = update(table).where(
            table.c.parked_at.is_not(None), table.c.sent_at.is_(None)
        )
        self._unpark_values = {"parked_at": None, "parked_reason": None, "refusals": 0}

    def claim(self, connection: Connection, held: Sequence[int] = ()) -> Sequence[Row[Any]]:
        """The next pending rows in order, locked, but for the ``held`` positions."""
        return connection.execute(self.pending, {"held": list(held)}).all()

    def record_sent(self, connection: Connection, positions: Sequence[int]) -> None:
        if positions:
            connection.execute(self.mark_sent, {"positions": list(positions)})

    def record_refused(self, connection: Connection, refusals: Sequence[Refusal]) -> None:
        """Count each refusal and park the rows to park (skipped from now on); one statement
        for the batch's refused rows."""
        if refusals:
            connection.execute(
                self.refuse,
                [
                    {
                        "row_position": refusal.position,
                        "reason": refusal.reason[:REASON_CHARACTERS],
                        "park": refusal.park,
                    }
                    for refusal in refusals
                ],
            )

    def backlog_of(self, connection: Connection) -> tuple[int, float]:
        count, age = connection.execute(self.backlog).one()
        return int(count), float(age)

    def count_parked(self, connection: Connection) -> int:
        return int(connection.scalar(self.parked_count) or 0)

    def list_parked(self, connection: Connection) -> list[ParkedRow]:
        return [ParkedRow(*row) for row in connection.execute(self.parked)]

    def unpark(self, connection: Connection, event_ids: Sequence[uuid.UUID] | None) -> int:
        """Put parked rows (all, or those of ``event_ids``) back in line; how many there were."""
        statement = self._unpark.values(self._unpark_values)
        if event_ids is not None:
            ids = bindparam("event_ids", list(event_ids), type_=ARRAY(Uuid()))
            statement = statement.where(self.table.c.event_id == any_(ids))
        return int(getattr(connection.execute(statement), "rowcount", 0) or 0)

    def prune(self, connection: Connection, retention: timedelta) -> int:
        result = connection.execute(
            delete(self.table).where(self.table.c.sent_at < func.now() - retention)
        )
        return int(getattr(result, "rowcount", 0) or 0)
