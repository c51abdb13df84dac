"""The broker topology, as code.

- ``events``: durable topic exchange; routing keys ``<producer>.<event_name>``. Its alternate
  exchange keeps events no queue is bound for in ``events.unrouted`` instead of dropping them.
- Per (service, event): quorum queue ``<service>.<event_name>`` with a delivery limit, retry
  queues ``<queue>.retry.<delay>`` whose TTL dead-letters back to it, and ``<queue>.dlq`` fed
  through the ``events.dlx`` direct exchange.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

EVENTS_EXCHANGE = "events"
UNROUTED = "events.unrouted"
DEAD_LETTER_EXCHANGE = "events.dlx"
DEFAULT_RETRY_DELAYS_MS = (1_000, 10_000, 60_000)

events_exchange = Exchange(
    EVENTS_EXCHANGE, "topic", durable=True, arguments={"alternate-exchange": UNROUTED}
)
unrouted_exchange = Exchange(UNROUTED, "fanout", durable=True)
unrouted_queue = Queue(UNROUTED, unrouted_exchange, durable=True)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, "direct", durable=True)


def routing_key(producer: str, event_name: str) -> str:
    return f"{producer}.{event_name}"


def delay_label(delay_ms: int) -> str:
    return f"{delay_ms // 1000}s" if delay_ms % 1000 == 0 else f"{delay_ms}ms"


@dataclass(frozen=True)
class ConsumerQueue:
    """The queues one service keeps for one event it subscribes to."""

    service: str
    routing_key: str
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    delivery_limit: int = 10

    @property
    def name(self) -> str:
        return f"{self.service}.{self.routing_key.split('.', 1)[1]}"

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue_name(self, attempt: int) -> str:
        """Retry queue for the given (1-based) retry attempt."""
        return f"{self.name}.retry.{delay_label(self.retry_delays_ms[attempt - 1])}"

    def main_queue(self) -> Queue:
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": self.dlq_name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        return Queue(
            self.name,
            events_exchange,
            routing_key=self.routing_key,
            durable=True,
            queue_arguments=arguments,
        )

    def dead_letter_queue(self) -> Queue:
        return Queue(
            self.dlq_name,
            dead_letter_exchange,
            routing_key=self.dlq_name,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )

    def retry_queues(self) -> list[Queue]:
        return [
            Queue(
                self.retry_queue_name(attempt),
                durable=True,
                queue_arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.name,
                },
            )
            for attempt, delay in enumerate(self.retry_delays_ms, start=1)
        ]

    def all_queues(self) -> list[Queue]:
        return [self.main_queue(), self.dead_letter_queue(), *self.retry_queues()]


def declare(connection: Connection, queues: Iterable[ConsumerQueue] = ()) -> None:
    """Declare the core exchanges and the given consumer queues (idempotent)."""
    channel = connection.channel()
    try:
        for exchange in (unrouted_exchange, events_exchange, dead_letter_exchange):
            exchange(channel).declare()
        unrouted_queue(channel).declare()
        for consumer_queue in queues:
            for queue in consumer_queue.all_queues():
                queue(channel).declare()
    finally:
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


def consumer_queue(
    service: str,
    producer: str,
    event_name: str,
    retry_delays_ms: Iterable[int],
    delivery_limit: int,
) -> ConsumerQueue:
    """The queue ``service`` keeps for ``producer``'s ``event_name`` events."""
    return ConsumerQueue(
        service,
        routing_key(producer, event_name),
        retry_delays_ms=tuple(retry_delays_ms),
        delivery_limit=delivery_limit,
    )
