"""Publishing with pipelined publisher confirms.

A batch is written to the socket in one go and then the confirms are awaited together, so a
batch costs one broker round trip instead of one per message. Messages are persistent and
``mandatory``; a batch that is not fully confirmed within ``confirm_timeout`` fails and its
messages count as not published (the caller keeps them and tries again: duplicates, never loss).
"""

import time
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from kombu.connection import Connection

from signup_shared.messaging.connection import connect
from signup_shared.messaging.wire import OutgoingMessage

log = structlog.get_logger(__name__)


class PublishError(Exception):
    """Some messages of a batch were not confirmed; ``confirmed`` lists those that were."""

    def __init__(self, message: str, confirmed: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.confirmed = confirmed


class Publisher(Protocol):
    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


class _Confirms:
    """Book-keeping of delivery tags of the channel in confirm mode."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, str] = {}
        self.acked: set[str] = set()
        self.failed: dict[str, str] = {}

    def sent(self, message_id: str) -> None:
        self.pending[self.next_tag] = message_id
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool, ok: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            message_id = self.pending.pop(tag, None)
            if message_id is None:
                continue
            if ok and message_id not in self.failed:
                self.acked.add(message_id)
            elif not ok:
                self.failed[message_id] = "nacked by the broker"

    def returned(self, message_id: str, reason: str) -> None:
        self.failed[message_id] = reason

    def reset(self) -> None:
        self.pending.clear()
        self.acked.clear()
        self.failed.clear()


class ConfirmingPublisher:
    """A kombu/py-amqp connection with a channel in confirm mode; reconnects on demand."""

    def __init__(self, url: str, confirm_timeout: float = 10.0, heartbeat: int = 20) -> None:
        self.url = url
        self.confirm_timeout = confirm_timeout
        self.heartbeat = heartbeat
        self._connection: Connection | None = None
        self._channel: Any = None
        self._confirms = _Confirms()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected

    def _open(self) -> None:
        self._connection = connect(self.url, self.heartbeat)
        channel = self._connection.channel()
        channel.confirm_select()
        self._confirms = _Confirms()
        confirms = self._confirms
        channel.events["basic_ack"].add(
            lambda tag, multiple: confirms.settle(tag, multiple, ok=True)
        )
        channel.events["basic_nack"].add(
            lambda tag, multiple: confirms.settle(tag, multiple, ok=False)
        )
        channel.events["basic_return"].add(
            lambda exc, exchange, routing_key, message: confirms.returned(
                str(message.properties.get("message_id")), f"unroutable: {exc}"
            )
        )
        self._channel = channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("publisher.close_failed", exc_info=True)

    def heartbeat_check(self) -> None:
        if self._connection is not None:
            self._connection.heartbeat_check()

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish all messages and wait for every confirm; raise ``PublishError`` otherwise."""
        if not messages:
            return
        try:
            if not self.connected:
                self._open()
            self._publish_and_wait(messages)
        except PublishError:
            raise
        except Exception as exc:
            confirmed = frozenset(self._confirms.acked)
            self.close()
            raise PublishError(f"broker connection failed: {exc!r}", confirmed) from exc

    def _publish_and_wait(self, messages: Sequence[OutgoingMessage]) -> None:
        assert self._connection is not None
        confirms = self._confirms
        confirms.reset()
        for message in messages:
            self._channel.basic_publish(
                message.to_amqp(),
                exchange=message.exchange,
                routing_key=message.routing_key,
                mandatory=True,
            )
            confirms.sent(message.message_id)
        deadline = time.monotonic() + self.confirm_timeout
        while confirms.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                confirmed = frozenset(confirms.acked)
                self.close()
                raise PublishError(
                    f"{len(confirms.pending)} of {len(messages)} messages unconfirmed after "
                    f"{self.confirm_timeout}s",
                    confirmed,
                )
            try:
                self._connection.drain_events(timeout=remaining)
            except TimeoutError:
                continue
        if confirms.failed:
            raise PublishError(
                f"{len(confirms.failed)} of {len(messages)} messages refused: "
                f"{next(iter(confirms.failed.values()))}",
                frozenset(confirms.acked),
            )
