"""The broker side: connecting (one line and exit 69 when it fails) and publishing a replayed
event into one queue of a service, with that service's own credentials.

A service's user may not write to the default exchange; it may publish to ``events.retry`` with
the routing keys of its own queues, and each main queue is bound there by its own name (that is
how its retry copies come back, ``signup_shared.messaging.topology``). A replayed copy takes the
same way: published to ``events.retry`` with routing key = the queue's name, ``mandatory``, with
publisher confirms, one event at a time, so the broker's permissions guarantee that the
command can reach no other service's queue.
"""

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import amqp
from kombu.connection import Connection

from signup_contracts.amqp import REPLAYED_AT_HEADER, RETRY_EXCHANGE
from signup_events.errors import BrokerUnavailableError, PublishFailedError
from signup_shared.cli import BROKER_ERRORS, masked_url
from signup_shared.messaging import history
from signup_shared.messaging.connection import addresses, connect
from signup_shared.messaging.delivery import Delivery

KEPT_PROPERTIES: Final = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "message_id",
    "timestamp",
    "type",
    "app_id",
)
"""What a replayed copy keeps (``user_id`` is checked against the publishing user: dropped)."""


@contextmanager
def connection_to(url: str) -> Iterator[Connection]:
    """An open connection to the first node of ``url`` that answers, else exit 69 with one line
    naming the (masked) addresses."""
    try:
        connection = connect(url, name="signup-events")
    except ValueError as exc:
        raise BrokerUnavailableError(f"invalid AMQP URL {masked_url(url)}: {exc}") from None
    except BROKER_ERRORS as exc:
        raise BrokerUnavailableError(
            f"cannot reach the broker at {addresses(url)} ({masked_url(url)}): "
            f"{masked_url(str(exc)) or type(exc).__name__}; is RabbitMQ running, and the "
            f"user's password right?"
        ) from None
    try:
        yield connection
    finally:
        with contextlib.suppress(Exception):
            connection.release()


def copy_of(message: Any, now: datetime | None = None) -> amqp.Message:
    """The message to publish for a history delivery: same body and properties, its headers
    without the stream's offset, with ``x-signup-replayed-at``."""
    delivery = Delivery.of(message)
    properties = {k: delivery.properties[k] for k in KEPT_PROPERTIES if k in delivery.properties}
    headers = {k: v for k, v in delivery.headers.items() if k != history.OFFSET_HEADER}
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    headers[REPLAYED_AT_HEADER] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return amqp.Message(delivery.body, application_headers=headers, **properties)


class ServiceTarget:
    """Publishes into the service's queues through ``events.retry`` (see the module's text)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.channel: Any = None
        self.returned: list[str] = []

    def has_queue(self, queue: str) -> bool:
        channel = self.connection.channel()
        try:
            channel.queue_declare(queue, passive=True)
        except amqp.exceptions.NotFound:
            return False
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        return True

    def publish(self, queue: str, message: Any) -> None:
        if self.channel is None:
            self.channel = self.connection.channel()
            self.channel.confirm_select()
            self.channel.events["basic_return"].add(self._on_return)
        try:
            self.channel.basic_publish_confirm(
                copy_of(message), exchange=RETRY_EXCHANGE, routing_key=queue, mandatory=True
            )
        except amqp.exceptions.MessageNacked:
            raise PublishFailedError(f"the broker refused (nacked) an event for {queue}") from None
        except amqp.exceptions.AccessRefused as exc:
            raise PublishFailedError(
                f"not allowed to publish into {queue} ({exc.reply_text}): replay with the "
                f"service's own credentials (--amqp-url or <SERVICE>_AMQP_URL)"
            ) from None
        if self.returned:
            reason = self.returned.pop()
            raise PublishFailedError(f"an event for {queue} was returned: {reason}")

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, _message: Any) -> None:
        self.returned.append(f"{exc} (exchange {exchange!r}, routing key {routing_key!r})")
