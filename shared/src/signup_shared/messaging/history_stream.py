"""The event history: ``events.history``, a stream that keeps, by age and size
(``EVENTS_HISTORY_*``), every event of a version without personal data in clear, declared by
the administrator only (binding it needs write access to it, which no service has). Catch-up
reads it: ``history``, ``catch_up``.

The stream is bound to ``events`` once per routing key of a registered version the history may
keep (``signup_contracts.history_versions``: every version but those marked ``personal_data``,
i.e. ``UserSignedUp`` v1 and v2). A signup reaches it as v3, its personal fields sealed with the
user's key (``signup_contracts.sealed``): erasing the user deletes the key, and what the history
holds of them can no longer be read. A new event version is kept once it is registered and the
definitions regenerated; a version with personal data in clear never is.
"""

import contextlib

from kombu.connection import Connection
from kombu.entity import Queue, binding

from signup_contracts import history_versions, publishers
from signup_contracts.amqp import EVENTS_EXCHANGE, HISTORY_STREAM, routing_key
from signup_shared.messaging.topology import declare_entity, events_exchange
from signup_shared.settings import HistorySettings

RETIRED_KEYS = ("#",)
"""Keys the stream was bound with by earlier versions (``#`` kept personal data in clear)."""


def history_routing_keys() -> tuple[str, ...]:
    """Every routing key the stream is bound to, sorted: one per (publisher, kept version)."""
    return tuple(
        sorted(
            {
                routing_key(producer, event.event_type, event.version)
                for event in history_versions()
                for producer in publishers(event)
            }
        )
    )


def history_stream(retention: HistorySettings | None = None) -> Queue:
    """``events.history``: every event kept by the history, by age and size; replicated on
    ``replicas`` nodes (capped by the cluster's size, so one node is fine)."""
    settings = retention or HistorySettings()
    return Queue(
        HISTORY_STREAM,
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "stream",
            "x-max-age": f"{settings.max_age_days}D",
            "x-max-length-bytes": settings.max_length_bytes,
            "x-stream-max-segment-size-bytes": settings.max_segment_size_bytes,
            "x-initial-cluster-size": settings.replicas,
        },
        bindings=[binding(events_exchange, routing_key=key) for key in history_routing_keys()],
    )


def declare_history(connection: Connection, retention: HistorySettings | None = None) -> None:
    """Declare and bind the history stream (as an administrator; idempotent while its arguments
    are unchanged: change retention with a policy, see docs/operations.md), then remove the
    bindings of earlier versions (``RETIRED_KEYS``), after the new ones exist."""
    declare_entity(connection, events_exchange, None)
    declare_entity(connection, history_stream(retention), None)
    channel = connection.channel()
    try:
        for key in RETIRED_KEYS:
            channel.queue_unbind(HISTORY_STREAM, EVENTS_EXCHANGE, key)
    finally:
        with contextlib.suppress(Exception):
            channel.close()
