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
from amqp import spec
from amqp.method_framing import frame_writer
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


class _FrameBuffer:
    """Stands in for the socket while a batch is framed, so the batch leaves in one write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))


PUBLISH_ARGS = "Bssbb"  # ticket, exchange, routing key, mandatory, immediate


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

    def _write_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Frame every publish into memory, then hand the whole batch to the socket at once.

        py-amqp writes each publish with its own ``sendall`` and first polls the socket for a
        ``connection.blocked`` notice; for a batch of hundreds that per-message syscall cost is
        most of the time. Framing into a buffer keeps py-amqp's own encoding and sends the batch
        in one write. A blocked broker simply withholds the confirms, which ends in the timeout.
        """
        assert self._connection is not None
        amqp_connection: Any = self._connection.connection
        frames = _FrameBuffer()
        socket_writer = amqp_connection.frame_writer
        amqp_connection.frame_writer = frame_writer(amqp_connection, frames)
        try:
            for message in messages:
                self._channel.send_method(
                    spec.Basic.Publish,
                    PUBLISH_ARGS,
                    (0, message.exchange, message.routing_key, True, False),
                    message.to_amqp(),
                )
                self._confirms.sent(message.message_id)
        finally:
            amqp_connection.frame_writer = socket_writer
        amqp_connection.transport.write(b"".join(frames.chunks))

    def _publish_and_wait(self, messages: Sequence[OutgoingMessage]) -> None:
        assert self._connection is not None
        confirms = self._confirms
        confirms.reset()
        self._write_batch(messages)
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
