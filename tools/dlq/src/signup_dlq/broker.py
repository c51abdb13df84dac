"""Thin pika (BlockingConnection) layer: connect, inspect, take, publish, ack, purge.

Every pika/socket failure is turned into a :class:`~signup_dlq.errors.DlqError` with a
one-line message; the logic lives in ``replay.py`` / ``deadletter.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, Self

import pika
import pika.exceptions

from signup_dlq.config import amqp_urls, mask_credentials, redact_url, vhost_from_amqp_url
from signup_dlq.deadletter import RawMessage
from signup_dlq.errors import (
    BrokerUnavailableError,
    DlqError,
    PublishFailedError,
    QueueNotFoundError,
)

PROPERTY_NAMES: Final = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)

NOT_FOUND: Final = 404


def _parameters(url: str) -> Any:
    try:
        return pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise DlqError(f"invalid AMQP URL {redact_url(url)}: {mask_credentials(str(exc))}") from exc


def properties_to_dict(properties: Any) -> dict[str, Any]:
    """pika ``BasicProperties`` -> plain dict (only the properties that are set)."""
    result: dict[str, Any] = {}
    for name in PROPERTY_NAMES:
        value = getattr(properties, name, None)
        if value is not None:
            result[name] = value
    return result


def dict_to_properties(properties: Mapping[str, Any]) -> Any:
    """Plain dict -> pika ``BasicProperties``."""
    return pika.BasicProperties(**{k: v for k, v in properties.items() if k in PROPERTY_NAMES})


class Broker:
    """One AMQP connection and channel to the vhost of ``amqp_url``.

    ``amqp_url`` may list the nodes of a cluster separated by ``;`` (as the services' settings
    do): pika tries them in that order and keeps the first that opens.
    """

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.vhost = vhost_from_amqp_url(amqp_url)
        parameters = [_parameters(url) for url in amqp_urls(amqp_url)]
        try:
            self._connection: Any = pika.BlockingConnection(parameters)
            self._channel: Any = self._connection.channel()
        except pika.exceptions.ProbableAuthenticationError as exc:
            raise BrokerUnavailableError(
                f"authentication to the broker failed at {redact_url(amqp_url)}"
            ) from exc
        except pika.exceptions.ProbableAccessDeniedError as exc:
            raise BrokerUnavailableError(
                f"access to vhost {self.vhost!r} denied at {redact_url(amqp_url)} "
                f"({_describe_exception(exc)})"
            ) from exc
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailableError(
                f"cannot connect to the broker at {redact_url(amqp_url)}: "
                f"{_describe_exception(exc)}"
            ) from exc
        self._confirming = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is KeyboardInterrupt:
            # Aborted mid-operation (a second Ctrl-C): a frame may be half written, so the
            # close handshake could wait forever. The process is exiting; the OS closes the
            # socket and the broker returns whatever was not acknowledged.
            return
        self.close()

    def close(self) -> None:
        """Close the connection; unacked messages go back to their queue (broker side)."""
        try:
            if self._connection.is_open:
                self._connection.close()
        except Exception:  # noqa: S110 - closing after an error/interrupt: nothing to do
            pass

    @contextmanager
    def _amqp_errors(self, queue: str) -> Iterator[None]:
        try:
            yield
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                raise QueueNotFoundError(
                    f"queue {queue!r} does not exist in vhost {self.vhost!r}"
                ) from exc
            raise DlqError(
                f"the broker closed the channel ({exc.reply_code} {exc.reply_text})"
            ) from exc
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailableError(
                f"lost the connection to the broker: {_describe_exception(exc)}"
            ) from exc

    def depth(self, queue: str) -> int:
        """Number of ready messages in ``queue``; raises QueueNotFoundError if it is missing."""
        with self._amqp_errors(queue):
            frame = self._channel.queue_declare(queue=queue, passive=True)
        return int(frame.method.message_count)

    def peek(self, queue: str, limit: int) -> list[RawMessage]:
        """The first ``limit`` messages of ``queue``, left in the queue.

        The messages are taken with manual acknowledgement and, once all are in hand, given
        back with a single ``basic.nack(multiple, requeue)`` (they are marked redelivered).
        """
        messages: list[RawMessage] = []
        with self._amqp_errors(queue):
            self._channel.queue_declare(queue=queue, passive=True)
            try:
                while len(messages) < limit:
                    message = self._get(queue)
                    if message is None:
                        break
                    messages.append(message)
            finally:
                if messages and self._channel.is_open:
                    self._channel.basic_nack(
                        delivery_tag=messages[-1].delivery_tag, multiple=True, requeue=True
                    )
        return messages

    def purge(self, queue: str) -> int:
        """Purge ``queue``; returns the number of messages removed."""
        with self._amqp_errors(queue):
            frame = self._channel.queue_purge(queue=queue)
        return int(frame.method.message_count)

    def _get(self, queue: str) -> RawMessage | None:
        method, properties, body = self._channel.basic_get(queue=queue, auto_ack=False)
        if method is None:
            return None
        return RawMessage(
            delivery_tag=int(method.delivery_tag),
            body=bytes(body or b""),
            properties=properties_to_dict(properties),
            redelivered=bool(method.redelivered),
        )

    # --- the ReplayChannel protocol (see replay.py) -------------------------------------

    def enable_confirms(self) -> None:
        """Turn on publisher confirms: ``publish`` then waits for the broker's ack."""
        if not self._confirming:
            with self._amqp_errors(""):
                self._channel.confirm_delivery()
            self._confirming = True

    def get(self, queue: str) -> RawMessage | None:
        with self._amqp_errors(queue):
            return self._get(queue)

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        if not self._confirming:
            raise RuntimeError("publish() needs enable_confirms() first")
        with self._amqp_errors(routing_key):
            try:
                self._channel.basic_publish(
                    exchange="",
                    routing_key=routing_key,
                    body=body,
                    properties=dict_to_properties(properties),
                    mandatory=True,
                )
            except pika.exceptions.UnroutableError as exc:
                raise PublishFailedError(
                    f"the broker returned the message as unroutable: "
                    f"does queue {routing_key!r} exist in vhost {self.vhost!r}?"
                ) from exc
            except pika.exceptions.NackError as exc:
                raise PublishFailedError(
                    f"the broker refused (nacked) the message for queue {routing_key!r}"
                ) from exc

    def ack(self, delivery_tag: int) -> None:
        with self._amqp_errors(""):
            self._channel.basic_ack(delivery_tag=delivery_tag)

    def requeue(self, delivery_tag: int) -> None:
        with self._amqp_errors(""):
            self._channel.basic_nack(delivery_tag=delivery_tag, requeue=True)


def _find_os_error(value: object, depth: int = 0) -> OSError | None:
    """pika wraps socket errors a few levels deep: find the OSError."""
    if isinstance(value, OSError):
        return value
    if depth > 5:
        return None
    if not isinstance(value, BaseException):
        return None
    # pika's connector errors keep the socket error in ``.exception``, others in ``args``.
    nested = getattr(value, "exception", None)
    candidates = (nested, *value.args) if nested is not None else value.args
    for arg in candidates:
        found = _find_os_error(arg, depth + 1)
        if found is not None:
            return found
    return None


def _describe_exception(exc: BaseException) -> str:
    os_error = _find_os_error(exc)
    if os_error is not None:
        return str(os_error) or type(os_error).__name__
    text = str(exc).strip()
    name = type(exc).__name__
    if not text or text in {"()", "''"}:
        return name
    return f"{name}: {text}"
