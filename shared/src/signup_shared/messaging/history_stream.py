"""The event history: ``events.history``, a stream bound to ``events`` with ``#`` that keeps
every event by age and size (``EVENTS_HISTORY_*``), declared by the administrator only (binding
it needs write access to it, which no service has). Catch-up reads it: ``history``,
``catch_up``.
"""

from kombu.connection import Connection
from kombu.entity import Queue

from signup_contracts.amqp import HISTORY_STREAM
from signup_shared.messaging.topology import declare_entity, events_exchange
from signup_shared.settings import HistorySettings


def history_stream(retention: HistorySettings | None = None) -> Queue:
    """``events.history``: every event, kept by age and size; replicated on ``replicas`` nodes
    (capped by the cluster's size, so one node is fine)."""
    settings = retention or HistorySettings()
    return Queue(
        HISTORY_STREAM,
        events_exchange,
        routing_key="#",
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "stream",
            "x-max-age": f"{settings.max_age_days}D",
            "x-max-length-bytes": settings.max_length_bytes,
            "x-stream-max-segment-size-bytes": settings.max_segment_size_bytes,
            "x-initial-cluster-size": settings.replicas,
        },
    )


def declare_history(connection: Connection, retention: HistorySettings | None = None) -> None:
    """Declare and bind the history stream (as an administrator; idempotent while its arguments
    are unchanged: change retention with a policy, see docs/operations.md)."""
    declare_entity(connection, events_exchange, None)
    declare_entity(connection, history_stream(retention), None)
