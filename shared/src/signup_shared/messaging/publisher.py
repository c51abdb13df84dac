"""Publishing with pipelined publisher confirms.

A batch is framed in memory and written to the socket in one go, then its confirms are awaited
together, so a batch costs one broker round trip instead of one per message. Batches may
overlap (``send`` the next before ``wait``-ing for the previous). Messages are persistent and
``mandatory``; a batch not fully confirmed within ``confirm_timeout`` fails and its messages
count as not published: the caller keeps them and tries again (duplicates, never loss).

Quiet minutes: a ``KeepAlive`` timer services the connection while no batch uses it (heartbeats
both ways, a close noticed), so the broker never drops it for missed heartbeats. A batch whose
connection died anyway (a write or the wait for its confirms failed on the connection, or the
connection was replaced in between) is sent once more on a fresh connection before it counts as
failed. A message the client cannot encode (an AMQP short string over 255 bytes, a header value
it cannot represent) or the broker refuses (nack, returned) is reported on its own in
``PublishError.refused``; the rest of its batch is published.
"""

import contextlib
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog
from amqp.exceptions import RecoverableConnectionError
from kombu.connection import Connection

from signup_shared.messaging.confirms import Confirms as _Confirms
from signup_shared.messaging.confirms import Ticket
from signup_shared.messaging.connection import KeepAlive, connect, service_idle
from signup_shared.messaging.framing import PublishFramer, frame_with_amqp
from signup_shared.messaging.wire import OutgoingMessage

log = structlog.get_logger(__name__)

__all__ = ["ConfirmingPublisher", "PublishError", "Publisher", "Ticket"]

UNENCODABLE = "cannot be encoded"
"""How the reason of a message the client refuses to encode begins (it never will encode)."""


class PublishError(Exception):
    """Some messages of a batch were not confirmed; ``confirmed`` lists those that were, and
    ``refused`` (message id -> reason) those the client or the broker refused one by one (the
    others failed with the connection and may succeed when tried again)."""

    def __init__(
        self,
        message: str,
        confirmed: frozenset[str] = frozenset(),
        refused: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.refused: dict[str, str] = dict(refused or {})


class _ConnectionLost(Exception):
    """The connection died while a batch waited for its confirms (``confirmed`` had arrived)."""

    def __init__(self, message: str, confirmed: frozenset[str]) -> None:
        super().__init__(message)
        self.confirmed = confirmed


class Publisher(Protocol):
    def send(self, messages: Sequence[OutgoingMessage]) -> Ticket: ...

    def wait(self, ticket: Ticket) -> None: ...

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


class ConfirmingPublisher:
    """A kombu/py-amqp connection with a channel in confirm mode; reconnects on demand.

    Thread-safe: ``send``, ``wait`` and the keep-alive timer take turns on the connection.
    """

    def __init__(self, url: str, confirm_timeout: float = 10.0, heartbeat: int = 20) -> None:
        self.url = url
        self.confirm_timeout = confirm_timeout
        self.heartbeat = heartbeat
        self._connection: Connection | None = None
        self._channel: Any = None
        self._confirms = _Confirms()
        self._generation = 0
        self._lock = threading.Lock()
        self._keepalive: KeepAlive | None = None
        self._replaced: tuple[str, str] | None = None  # (broker, reason) of a dropped connection

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected

    def _open(self) -> None:
        if self._keepalive is None and self.heartbeat:
            self._keepalive = KeepAlive(
                self.heartbeat_check, self.heartbeat / 4, "publisher-keepalive"
            ).start()
        self._connection = connect(self.url, self.heartbeat)
        self._generation += 1
        if self._replaced is not None:
            previous, reason = self._replaced
            log.warning(
                "publisher.connection_replaced",
                broker=self._connection.host,
                previous=previous,
                reason=reason,
            )
            self._replaced = None
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

    def _drop(self, reason: BaseException | str | None = None) -> None:
        """Forget the connection; with a ``reason`` it died, and its replacement says why."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None:
            return
        if reason is not None:
            text = reason if isinstance(reason, str) else repr(reason)
            self._replaced = (str(connection.host), text)
            log.info("publisher.connection_lost", broker=connection.host, reason=text)
        try:
            connection.release()
        except Exception:
            log.debug("publisher.close_failed", exc_info=True)

    def close(self) -> None:
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        with self._lock:
            self._drop()

    def heartbeat_check(self) -> None:
        """Service the idle connection (the keep-alive timer calls this); skipped while a batch
        is using it, since a batch keeps traffic flowing anyway."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._connection is not None:
                try:
                    service_idle(self._connection)
                except Exception as exc:
                    self._drop(exc)
        finally:
            self._lock.release()

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish all messages and wait for every confirm; raise ``PublishError`` otherwise."""
        if messages:
            self.wait(self.send(messages))

    def send(self, messages: Sequence[OutgoingMessage]) -> Ticket:
        """Write a batch to the broker without waiting; ``wait`` collects its confirms."""
        with self._lock:
            return self._send(tuple(messages), retried=False)

    def wait(self, ticket: Ticket) -> None:
        """Wait until every message of the batch is confirmed; ``PublishError`` otherwise."""
        with self._lock:
            confirmed, refused = self._settle(ticket)
        if refused:
            raise PublishError(
                f"{len(refused)} of {len(ticket.message_ids)} messages refused: "
                f"{next(iter(refused.values()))}",
                confirmed,
                refused,
            )

    def _send(self, messages: tuple[OutgoingMessage, ...], retried: bool) -> Ticket:
        was_open = self.connected
        try:
            if not was_open:
                self._open()
            first_tag = self._confirms.next_tag
            refused = self._write_batch(messages)
        except Exception as exc:
            self._drop(exc)
            if was_open and not retried:  # it died since its last use: once more, afresh
                return self._send(messages, retried=True)
            raise PublishError(f"broker connection failed: {exc!r}") from exc
        return Ticket(
            self._generation,
            self._confirms.next_tag - 1,
            frozenset(m.message_id for m in messages),
            messages,
            refused,
            retried,
            first_tag,
        )

    def _settle(self, ticket: Ticket) -> tuple[frozenset[str], dict[str, str]]:
        """The confirmed and the refused messages of a batch, resending it once on a fresh
        connection if its own died; ``PublishError`` if it cannot be settled."""
        try:
            confirmed, refused = self._await(ticket)
            return confirmed, {**ticket.refused, **refused}
        except _ConnectionLost as lost:
            if ticket.retried:
                raise PublishError(str(lost), lost.confirmed, ticket.refused) from lost
            done, reason = lost.confirmed, str(lost)
        left = tuple(m for m in ticket.messages if m.message_id not in done | ticket.refused.keys())
        log.info("publisher.resending", count=len(left), reason=reason)
        try:
            again = self._send(left, retried=True)
            confirmed, refused = self._settle(again)
        except PublishError as exc:
            refused = {**ticket.refused, **exc.refused}
            raise PublishError(str(exc), done | exc.confirmed, refused) from exc
        return done | confirmed, {**ticket.refused, **refused}

    def _await(self, ticket: Ticket) -> tuple[frozenset[str], dict[str, str]]:
        """Read confirms until the batch is settled (``_ConnectionLost`` if the connection dies,
        ``PublishError`` when the confirms do not come in time)."""
        if ticket.generation != self._generation or self._connection is None:
            raise _ConnectionLost("connection lost before the batch was confirmed", frozenset())
        confirms, connection = self._confirms, self._connection
        deadline = time.monotonic() + self.confirm_timeout
        try:
            while confirms.outstanding(ticket):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishError(f"batch unconfirmed after {self.confirm_timeout}s")
                with contextlib.suppress(TimeoutError, socket.timeout):
                    connection.drain_events(timeout=remaining)
        except PublishError as exc:
            self._drop()
            raise PublishError(str(exc), confirms.collect(ticket)[0], ticket.refused) from exc
        except Exception as exc:
            confirmed = confirms.collect(ticket)[0]
            self._drop(exc)
            raise _ConnectionLost(f"broker connection failed: {exc!r}", confirmed) from exc
        return confirms.collect(ticket)

    def _write_batch(self, messages: Sequence[OutgoingMessage]) -> dict[str, str]:
        """Frame every publish into memory, then hand the whole batch to the socket at once;
        returns the messages the client cannot encode (left out of the batch) with the reason.

        py-amqp writes each publish with its own ``sendall`` and first polls the socket for a
        ``connection.blocked`` notice; for a batch of hundreds that per-message syscall cost is
        most of the time. ``PublishFramer`` writes py-amqp's bytes for our messages directly;
        one it declines is framed by py-amqp into memory (which refuses what it cannot encode).
        The batch leaves in one write. A blocked broker simply withholds the confirms, which
        ends in the timeout.
        """
        assert self._connection is not None
        if self._channel is None or self._channel.connection is None:
            raise RecoverableConnectionError("channel already closed")
        amqp_connection: Any = self._connection.connection
        framer = PublishFramer(
            self._channel.channel_id, amqp_connection.frame_max, int(time.time())
        )
        frames: list[bytes] = []
        refused: dict[str, str] = {}
        for message in messages:
            framed = framer.frame(message)
            if framed is None:
                try:
                    framed = frame_with_amqp(self._channel, message, framer.timestamp)
                except Exception as exc:  # framed in memory: only the message can be at fault
                    refused[message.message_id] = f"{UNENCODABLE}: {type(exc).__name__}: {exc}"
                    continue
            frames.append(framed)
            self._confirms.sent(message.message_id)
        if frames:
            amqp_connection.transport.write(b"".join(frames))
            amqp_connection.bytes_sent += len(frames)
        return refused
