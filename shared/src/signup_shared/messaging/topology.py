"""The broker topology, as code.

- ``events``: durable topic exchange; routing keys ``<producer>.<event_name>`` (version 1) and
  ``<producer>.<event_name>.v<n>`` (version n >= 2). Its alternate exchange keeps events no queue
  is bound for in ``events.unrouted`` instead of dropping them.
- A consumer queue is bound to the key of the one version its service reads; the keys of the
  event's other versions are unbound right after (bind first, then unbind: a service switched
  to another version by a restart loses nothing, and what arrives twice meanwhile its inbox
  absorbs).
- Per (service, event): quorum queue ``<service>.<event_name>`` with a delivery limit, retry
  queues ``<queue>.retry.<delay>`` whose TTL dead-letters back to it, and ``<queue>.dlq`` fed
  through the ``events.dlx`` topic exchange.
- ``events.retry``: topic exchange of the retries. Each retry queue is bound to it by its own name
  (the runtime publishes retry copies there) and dead-letters through it back to the main queue,
  which is bound to it by its own name too. Nothing of a service goes through the default
  exchange, and ``events.retry`` and ``events.dlx`` being topic exchanges, topic permissions
  limit each service to routing keys of its own queues (``deploy/rabbitmq/generate.py``).

- ``events.history``: a stream (``x-queue-type: stream``) bound to ``events`` with the key of
  every registered version without personal data in clear (``history_stream``; a signup is kept
  as ``UserSignedUp`` v3, sealed): each such event published is kept there, up to its
  retention (``HistorySettings``: age, total size, segment size), for readers that join later
  (``messaging.catch_up``). Declared with its bindings by the administrator (the broker
  definitions, :func:`declare_history`): no service may write to it, and a binding needs write
  access to the queue. The alternate exchange
  ``events.unrouted`` receives what neither a service queue nor the stream takes (a version
  with personal data no service reads): see docs/operations.md, "Event history".

Every other queue is a quorum queue, the retry queues and ``events.unrouted`` included: they
replicate on a cluster by themselves (RabbitMQ 4 has no classic mirroring), and since RabbitMQ
3.10 a quorum queue keeps a message TTL and dead-letters what expires. Dead-lettering is
at-most-once by default; the retry queues ask for at-least-once (which needs
``x-overflow: reject-publish``), so a retry copy whose way back is briefly unavailable stays in
its retry queue instead of being dropped.

Brokers declared by an older version (``events.dlx`` a direct exchange, retry queues
dead-lettering through the default exchange, retry queues and ``events.unrouted`` classic
queues) are migrated by :func:`declare`: the exchange is re-created, an empty queue re-declared
(a queue's type or arguments cannot change in place); a queue that still holds messages is
refused with a message saying what to do.
"""

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from amqp.exceptions import PreconditionFailed
from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding

from signup_contracts.amqp import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_SUFFIX,
    EVENTS_EXCHANGE,
    EVENTS_EXCHANGE_TYPE,
    RETRY_EXCHANGE,
    UNROUTED_EXCHANGE,
    unversioned_key,
)

log = structlog.get_logger(__name__)

QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
DEFAULT_RETRY_DELAYS_MS = (1_000, 10_000, 60_000)

events_exchange = Exchange(
    EVENTS_EXCHANGE,
    EVENTS_EXCHANGE_TYPE,
    durable=True,
    arguments={"alternate-exchange": UNROUTED_EXCHANGE},
)
unrouted_exchange = Exchange(UNROUTED_EXCHANGE, "fanout", durable=True)
unrouted_queue = Queue(
    UNROUTED_EXCHANGE, unrouted_exchange, durable=True, queue_arguments=dict(QUORUM)
)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, "topic", durable=True)
retry_exchange = Exchange(RETRY_EXCHANGE, "topic", durable=True)
CORE_EXCHANGES = (unrouted_exchange, events_exchange, dead_letter_exchange, retry_exchange)


class TopologyError(Exception):
    """The broker holds an older topology that cannot be migrated safely (the message says why)."""


def delay_label(delay_ms: int) -> str:
    return f"{delay_ms // 1000}s" if delay_ms % 1000 == 0 else f"{delay_ms}ms"


@dataclass(frozen=True)
class ConsumerQueue:
    """The queues one service keeps for one event it subscribes to.

    ``routing_key`` is the key the queue is bound to on ``events``: the version the service
    reads. ``other_keys`` are the keys of the event's other versions the service knows: not
    bound, and unbound by :func:`declare` if an earlier start bound them. The queue's name does
    not depend on the version (``notifications.user_signed_up`` for every version).
    """

    service: str
    routing_key: str
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    delivery_limit: int = 10
    other_keys: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.service}.{unversioned_key(self.routing_key).split('.', 1)[1]}"

    @property
    def subscribed_keys(self) -> tuple[str, ...]:
        """Every key the service may bind or unbind on ``events`` (its topic permissions)."""
        return tuple(sorted({self.routing_key, *self.other_keys}))

    @property
    def dlq_name(self) -> str:
        return f"{self.name}{DEAD_LETTER_SUFFIX}"

    def retry_queue_name(self, attempt: int) -> str:
        """Retry queue for the given (1-based) retry attempt."""
        return f"{self.name}.retry.{delay_label(self.retry_delays_ms[attempt - 1])}"

    def main_queue(self) -> Queue:
        arguments: dict[str, Any] = {
            **QUORUM,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": self.dlq_name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        return Queue(
            self.name,
            routing_key=self.routing_key,
            durable=True,
            queue_arguments=arguments,
            bindings=[
                binding(events_exchange, routing_key=self.routing_key),
                binding(retry_exchange, routing_key=self.name),  # back from its retry queues
            ],
        )

    def dead_letter_queue(self) -> Queue:
        return Queue(
            self.dlq_name,
            dead_letter_exchange,
            routing_key=self.dlq_name,
            durable=True,
            queue_arguments=dict(QUORUM),
        )

    def retry_queues(self) -> list[Queue]:
        return [
            Queue(
                self.retry_queue_name(attempt),
                retry_exchange,
                routing_key=self.retry_queue_name(attempt),
                durable=True,
                queue_arguments={
                    **QUORUM,
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": RETRY_EXCHANGE,
                    "x-dead-letter-routing-key": self.name,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",  # what at-least-once dead-lettering needs
                },
            )
            for attempt, delay in enumerate(self.retry_delays_ms, start=1)
        ]

    def all_queues(self) -> list[Queue]:
        return [self.main_queue(), self.dead_letter_queue(), *self.retry_queues()]


def declare(connection: Connection, queues: Iterable[ConsumerQueue] = ()) -> None:
    """Declare the core exchanges and the given consumer queues (idempotent; migrates).

    An exchange of another type (``events.dlx`` was a direct exchange) is deleted and re-created:
    its messages live in queues, and the bindings of the queues declared here are re-created
    right after (other services' DLQ bindings come back when they declare theirs; ``make run``'s
    setup migrates every binding at once as the administrator). A retry queue or
    ``events.unrouted`` of another type or other arguments (classic, from an older version) is
    deleted and re-declared if it is empty, refused with :class:`TopologyError` if it holds
    messages.
    """
    for exchange in CORE_EXCHANGES:
        declare_entity(
            connection,
            exchange,
            _exchange_deleter(exchange.name) if exchange is dead_letter_exchange else None,
        )
    declare_entity(connection, unrouted_queue, _empty_queue_deleter(unrouted_queue.name))
    for consumer_queue in queues:
        retries = {queue.name for queue in consumer_queue.retry_queues()}
        for queue in consumer_queue.all_queues():  # binds the main queue to its routing key
            migrate = _empty_queue_deleter(queue.name) if queue.name in retries else None
            declare_entity(connection, queue, migrate)
        unbind_other_versions(connection, consumer_queue)


def unbind_other_versions(connection: Connection, consumer_queue: ConsumerQueue) -> None:
    """Remove the queue's bindings to the keys of the versions it no longer reads (unbinding
    a binding that does not exist is no error). Called after the queue is bound to its key."""
    if not consumer_queue.other_keys:
        return
    channel = connection.channel()
    try:
        for key in consumer_queue.other_keys:
            channel.queue_unbind(consumer_queue.name, EVENTS_EXCHANGE, key)
    finally:
        _close(channel)
    log.info(
        "topology.unbound",
        queue=consumer_queue.name,
        bound=consumer_queue.routing_key,
        unbound=list(consumer_queue.other_keys),
    )


def declare_entity(
    connection: Connection, entity: Exchange | Queue, migrate: Callable[[Any], None] | None
) -> None:
    """Declare on a channel of its own: a refused declaration closes the channel."""
    channel = connection.channel()
    try:
        entity(channel).declare()
        return
    except PreconditionFailed:
        if migrate is None:
            raise
    finally:
        _close(channel)
    channel = connection.channel()
    try:
        migrate(channel)
        entity(channel).declare()
    finally:
        _close(channel)


def _exchange_deleter(name: str) -> Callable[[Any], None]:
    def delete(channel: Any) -> None:
        channel.exchange_delete(name)

    return delete


def _empty_queue_deleter(name: str) -> Callable[[Any], None]:
    def delete_if_empty(channel: Any) -> None:
        depth = channel.queue_declare(name, passive=True).message_count
        if depth:
            raise _busy(name, depth)
        try:
            channel.queue_delete(name, if_empty=True)
        except PreconditionFailed as exc:  # a message arrived since it was counted
            raise _busy(name, None) from exc

    return delete_if_empty


def _busy(name: str, depth: int | None) -> TopologyError:
    held = "messages" if depth is None else f"{depth} message(s)"
    return TopologyError(
        f"queue {name!r} was declared with another type or other arguments by an older version "
        f"(a queue's type cannot change in place) and holds {held}: it was left as it is. Let "
        f"them flow back to their queue (retry queues empty themselves after their delay) or "
        f"move them with the operator's tools, then declare again"
    )


def _close(channel: Any) -> None:
    with contextlib.suppress(Exception):  # a channel the broker closed already
        channel.close()


def delete(connection: Connection, queues: Iterable[ConsumerQueue]) -> None:
    """Delete consumer queues (tests, and re-declaring after an argument change)."""
    channel = connection.channel()
    try:
        for consumer_queue in queues:
            for queue in consumer_queue.all_queues():
                queue(channel).delete()
    finally:
        channel.close()
