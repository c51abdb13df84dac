"""Publishing with pipelined publisher confirms.

A batch is framed in memory and written to the socket in one go, then its confirms are awaited
together, so a batch costs one broker round trip instead of one per message. Batches may
overlap (``send`` the next before ``wait``-ing for the previous). Messages are persistent and
``mandatory``; a batch not fully confirmed within ``confirm_timeout`` fails and its messages
count as not published: the caller keeps them and tries again (duplicates, never loss).
"""

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from amqp import spec
from amqp.method_framing import frame_writer
from kombu.connection import Connection

from signup_shared.messaging.connection import connect
from signup_shared.messaging.wire import OutgoingMessage

log = structlog.get_logger(__name__)

PUBLISH_ARGS = "Bssbb"  # ticket, exchange, routing key, mandatory, immediate


class PublishError(Exception):
    """Some messages of a batch were not confirmed; ``confirmed`` lists those that were."""

    def __init__(self, message: str, confirmed: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.confirmed = confirmed


@dataclass(frozen=True)
class Ticket:
    """A batch on its way: its connection, the last delivery tag it used, its message ids."""

    generation: int
    last_tag: int
    message_ids: frozenset[str]


class Publisher(Protocol):
    def send(self, messages: Sequence[OutgoingMessage]) -> Ticket: ...

    def wait(self, ticket: Ticket) -> None: ...

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


class _Confirms:
    """Book-keeping of the delivery tags of a channel in confirm mode."""

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

    def outstanding(self, ticket: Ticket) -> bool:
        return bool(self.pending) and next(iter(self.pending)) <= ticket.last_tag

    def collect(self, ticket: Ticket) -> tuple[frozenset[str], dict[str, str]]:
        """The confirmed and the refused messages of a settled batch (forgotten afterwards)."""
        confirmed = frozenset(ticket.message_ids & self.acked)
        refused = {m: self.failed.pop(m) for m in ticket.message_ids if m in self.failed}
        self.acked -= ticket.message_ids
        return confirmed, refused


class _FrameBuffer:
    """Stands in for the socket while a batch is framed, so the batch leaves in one write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))


class ConfirmingPublisher:
    """A kombu/py-amqp connection with a channel in confirm mode; reconnects on demand."""

    def __init__(self, url: str, confirm_timeout: float = 10.0, heartbeat: int = 20) -> None:
        self.url = url
        self.confirm_timeout = confirm_timeout
        self.heartbeat = heartbeat
        self._connection: Connection | None = None
        self._channel: Any = None
        self._confirms = _Confirms()
        self._generation = 0

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected

    def _open(self) -> None:
        self._connection = connect(self.url, self.heartbeat)
        self._generation += 1
        channel = self._connection.channel()
        channel.confirm_select()
        self._confirms = confirms = _Confirms()
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
        if messages:
            self.wait(self.send(messages))

    def send(self, messages: Sequence[OutgoingMessage]) -> Ticket:
        """Write a batch to the broker without waiting; ``wait`` collects its confirms."""
        try:
            if not self.connected:
                self._open()
            self._write_batch(messages)
        except Exception as exc:
            self.close()
            raise PublishError(f"broker connection failed: {exc!r}") from exc
        return Ticket(
            self._generation,
            self._confirms.next_tag - 1,
            frozenset(m.message_id for m in messages),
        )

    def wait(self, ticket: Ticket) -> None:
        """Wait until every message of the batch is confirmed; ``PublishError`` otherwise."""
        if ticket.generation != self._generation or self._connection is None:
            raise PublishError("connection lost before the batch was confirmed")
        confirms, connection = self._confirms, self._connection
        deadline = time.monotonic() + self.confirm_timeout
        try:
            while confirms.outstanding(ticket):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishError(f"batch unconfirmed after {self.confirm_timeout}s")
                with contextlib.suppress(TimeoutError, socket.timeout):
                    connection.drain_events(timeout=remaining)
        except Exception as exc:
            confirmed = confirms.collect(ticket)[0]
            self.close()
            if isinstance(exc, PublishError):
                raise PublishError(str(exc), confirmed) from exc
            raise PublishError(f"broker connection failed: {exc!r}", confirmed) from exc
        confirmed, refused = confirms.collect(ticket)
        if refused:
            raise PublishError(
                f"{len(refused)} of {len(ticket.message_ids)} messages refused: "
                f"{next(iter(refused.values()))}",
                confirmed,
            )

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
