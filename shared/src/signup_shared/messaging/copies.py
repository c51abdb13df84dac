"""The copies a failed delivery leaves as: a retry copy or a dead-letter copy with our failure
headers, and the plainest dead-letter copy for when even that cannot be built or published."""

from signup_contracts.amqp import DEAD_LETTER_EXCHANGE, EVENT_VERSION_HEADER, RETRY_EXCHANGE
from signup_shared.messaging import failures
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.wire import OutgoingMessage, header_int, short_text

MAX_VERSION = 2**31 - 1


def rerouted(
    subscription: Subscription, delivery: Delivery, decision: failures.Decision, service: str
) -> OutgoingMessage:
    """The copy of a failed delivery that goes to a retry queue or the dead-letter queue.

    Every property and header is copied in a form the broker accepts again.
    """
    consumer_queue = subscription.queue
    attempt = decision.attempt
    if decision.action is failures.Action.RETRY and 1 <= attempt <= len(
        consumer_queue.retry_delays_ms
    ):
        exchange, target = RETRY_EXCHANGE, consumer_queue.retry_queue_name(attempt)
    else:
        exchange, target = DEAD_LETTER_EXCHANGE, consumer_queue.dlq_name
    props = delivery.properties
    headers = failures.failure_headers(
        delivery.headers,
        decision,
        service=service,
        queue=consumer_queue.name,
        exchange=delivery.exchange,
        routing_key=delivery.routing_key,
    )
    return OutgoingMessage(
        body=delivery.body,
        routing_key=target,
        message_id=short_text(props.get("message_id") or ""),
        type=short_text(props.get("type") or ""),
        version=header_int(headers.get(EVENT_VERSION_HEADER), 0, low=0, high=MAX_VERSION),
        correlation_id=short_text(props.get("correlation_id") or ""),
        producer=short_text(props.get("app_id") or ""),
        exchange=exchange,
        headers=headers,
    )


def unprocessable_copy(
    subscription: Subscription, delivery: Delivery, exc: BaseException, service: str
) -> OutgoingMessage:
    """The plainest dead-letter copy: the body and our own headers only, every value text."""
    consumer_queue = subscription.queue
    headers = failures.failure_headers(
        {},
        failures.unprocessable(exc),
        service=service,
        queue=consumer_queue.name,
        exchange=short_text(delivery.exchange),
        routing_key=short_text(delivery.routing_key),
    )
    return OutgoingMessage(
        body=delivery.body,
        routing_key=consumer_queue.dlq_name,
        message_id=short_text(delivery.properties.get("message_id") or ""),
        type="",
        version=0,
        correlation_id="",
        producer="",
        exchange=DEAD_LETTER_EXCHANGE,
        headers=headers,
    )
