"""A claimed batch of outbox rows (locked by a transaction of its own until marked sent or
abandoned), and each row as the message the relay publishes."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Transaction

from signup_contracts.amqp import TRACEPARENT_HEADER
from signup_shared import tracing
from signup_shared.messaging.wire import OutgoingMessage


def to_message(row: Any) -> OutgoingMessage:
    """The message of an outbox row; with the writing transaction's trace context, a producer
    span's (``traceparent`` header)."""
    headers: dict[str, Any] = {}
    if row.traceparent:
        headers[TRACEPARENT_HEADER] = tracing.stamp(
            f"publish {row.routing_key}",
            row.traceparent,
            tracing.PRODUCER,
            {"messaging.system": "rabbitmq", "messaging.message.id": row.event_id},
        )
    return OutgoingMessage(
        body=row.payload.encode(),
        routing_key=row.routing_key,
        message_id=row.event_id,
        type=row.event_type,
        version=row.version,
        correlation_id=row.correlation_id,
        producer=row.producer,
        headers=headers,
    )


@dataclass
class Claim:
    """Pending rows locked by an open transaction of their own."""

    connection: Connection
    transaction: Transaction
    rows: Sequence[Row[Any]]

    def abandon(self) -> None:
        try:
            self.transaction.rollback()
        finally:
            self.connection.close()
