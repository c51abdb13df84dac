"""The ``outbox`` table, as a mixin each service maps on its own declarative base."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from signup_shared.events import Envelope
from signup_shared.tracing import TRACEPARENT_LENGTH, current_traceparent

OUTBOX_NOTIFY_CHANNEL = "outbox"


class OutboxMixin:
    """One event waiting to be published (``sent_at`` null) or already confirmed by the broker.

    A row the relay cannot publish (the client cannot encode it, or the broker refused it
    ``park_after`` times) is parked: ``parked_at`` and ``parked_reason`` set, skipped by the
    relay until an operator puts it back in line (``<service> outbox retry``).

    A database trigger sends ``NOTIFY outbox`` when rows are inserted, so the relay wakes the
    moment the writing transaction commits instead of waiting for its next poll.
    """

    __tablename__ = "outbox"

    position: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    routing_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    producer: Mapped[str] = mapped_column(String(100))
    correlation_id: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    traceparent: Mapped[str | None] = mapped_column(String(TRACEPARENT_LENGTH))
    refusals: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_reason: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            Index("ix_outbox_pending", "position", postgresql_where=text("sent_at IS NULL")),
            Index("ix_outbox_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
            Index("ix_outbox_parked", "position", postgresql_where=text("parked_at IS NOT NULL")),
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope[Any]) -> Any:
        mapped: Any = cls
        return mapped(**outbox_values(envelope))


def outbox_values(envelope: Envelope[Any]) -> dict[str, Any]:
    """The outbox columns of ``envelope`` (for a Core insert written with the business data),
    with the trace context of the span in progress."""
    return {
        "event_id": envelope.id,
        "routing_key": envelope.routing_key,
        "event_type": envelope.type,
        "version": envelope.version,
        "producer": envelope.producer,
        "correlation_id": envelope.correlation_id,
        "payload": envelope.to_json().decode(),
        "traceparent": current_traceparent(),
    }


def outbox_ddl(table: str = "outbox") -> list[str]:
    """Statements (for migrations) that make inserts into the outbox wake the relay."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{OUTBOX_NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """,
        f"DROP TRIGGER IF EXISTS {table}_notify ON {table}",
        f"""
        CREATE TRIGGER {table}_notify AFTER INSERT ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify()
        """,
    ]
