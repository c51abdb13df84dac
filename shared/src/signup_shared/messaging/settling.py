"""Settling: ack, or re-publish a copy (retry queue / DLQ) and ack, or reject into the DLX.

Nothing a message holds can make these raise: when the copy cannot be built or published, a
plain ``unprocessable`` copy goes to the DLQ; when even that fails the message is rejected
without requeue, and the quorum queue dead-letters it itself. Only a lost connection (the ack
or reject cannot be sent) escapes, for the reconnect loop to handle.
"""

import enum
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from signup_contracts.amqp import DEAD_LETTER_EXCHANGE
from signup_shared.messaging import failures, topology
from signup_shared.messaging.connection import CONNECTION_ERRORS
from signup_shared.messaging.copies import rerouted, unprocessable_copy
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.publisher import Publisher
from signup_shared.messaging.queue_metrics import REJECTED, for_queue
from signup_shared.messaging.subscription import Subscription

log = structlog.get_logger(__name__)


class Settleable(Protocol):
    """What settling needs of a broker message (kombu's ``Message`` has it)."""

    def ack(self, multiple: bool = False) -> None: ...

    def reject(self, requeue: bool = False) -> None: ...


class Settled(enum.Enum):
    ACKED = "acked"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"  # into the queue's own dead-letter exchange


Result = tuple[Subscription, Any, Delivery, failures.Decision | None]
"""A decided delivery: its subscription, the broker message, what was read, the decision."""


def settle_batch(
    results: Sequence[Result], publisher: Publisher, service: str, ack_multiple: bool
) -> bool:
    """Settle what needs a copy one by one, then ack the rest: one ``multiple`` ack of the
    highest delivery tag while ``ack_multiple`` holds, else one ack each. A delivery decided
    ``None`` stays unacked, so from then on no multiple ack may cover it: returns whether
    multiple acks are still safe."""
    acks: list[Any] = []
    acked: dict[str, int] = {}
    for subscription, message, delivery, decision in results:
        if decision is None:
            ack_multiple = False
        elif decision.action is failures.Action.ACK:
            acks.append(message)
            acked[subscription.queue.name] = acked.get(subscription.queue.name, 0) + 1
        else:
            settle(message, delivery, subscription, decision, publisher, service)
    if acks and ack_multiple:
        ack(max(acks, key=delivery_tag), multiple=len(acks) > 1)
    else:
        for message in acks:
            ack(message)
    for name, count in acked.items():
        for_queue(name).handled.inc(count)
    return ack_multiple


def settle(
    message: Settleable,
    delivery: Delivery,
    subscription: Subscription,
    decision: failures.Decision,
    publisher: Publisher,
    service: str,
) -> Settled:
    """Ack, or re-publish the copy the decision asks for and ack (see the module docstring)."""
    if decision.action is failures.Action.ACK:
        ack(message)
        return Settled.ACKED
    counted = for_queue(subscription.queue.name)
    try:
        copy = rerouted(subscription, delivery, decision, service)
        publisher.publish_batch([copy])
    except Exception as exc:
        failures.log_failure(
            log.error, "message.reroute_failed", exc, queue=subscription.queue.name
        )
        try:
            publisher.publish_batch([unprocessable_copy(subscription, delivery, exc, service)])
        except Exception as again:
            failures.log_failure(
                log.error,
                "message.rejected_to_dead_letter_exchange",
                again,
                queue=subscription.queue.name,
            )
            reject(message)
            counted.dead_lettered(REJECTED).inc()
            return Settled.REJECTED
        log.warning("message.rerouted", target=subscription.queue.dlq_name, kind="unprocessable")
        ack(message)
        counted.dead_lettered(failures.UNPROCESSABLE).inc()
        return Settled.DEAD_LETTERED
    log.warning(
        "message.rerouted",
        target=copy.routing_key,
        kind=decision.kind,
        attempt=decision.attempt,
        error_type=failures.error_type(decision.error),
    )
    ack(message)
    if copy.exchange != DEAD_LETTER_EXCHANGE:  # a retry queue's
        counted.retried(
            topology.delay_label(subscription.queue.retry_delays_ms[decision.attempt - 1])
        ).inc()
        return Settled.RETRIED
    counted.dead_lettered(decision.kind).inc()
    return Settled.DEAD_LETTERED


def ack(message: Settleable, multiple: bool = False) -> None:
    try:
        message.ack(multiple=multiple)
    except CONNECTION_ERRORS:
        raise
    except Exception as exc:
        failures.log_failure(log.error, "message.ack_failed", exc)


def reject(message: Settleable) -> None:
    """Reject without requeue: the quorum queue dead-letters it through its own DLX."""
    try:
        message.reject(requeue=False)
    except CONNECTION_ERRORS:
        raise
    except Exception as exc:
        failures.log_failure(log.error, "message.reject_failed", exc)


def delivery_tag(message: Any) -> int:
    tag = getattr(message, "delivery_tag", 0)
    return tag if isinstance(tag, int) else 0
