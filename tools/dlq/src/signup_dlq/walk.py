"""One pass over a dead-letter queue, one message at a time, that a stop request ends at a
message boundary (the shape ``replay`` and ``drop-erased`` share; no I/O of its own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from signup_dlq.deadletter import RawMessage


class Source(Protocol):
    def get(self, queue: str) -> RawMessage | None:
        """Take the next message (manual ack), or ``None`` if the queue is empty."""


class StoppableWalk:
    """:meth:`request_stop` (safe from a signal handler) ends :meth:`walk` before the next
    message is taken: the message in hand is finished first, so the connection closes cleanly."""

    _stop_requested = False

    def request_stop(self) -> None:
        self._stop_requested = True

    def walk(
        self,
        source: Source,
        queue: str,
        *,
        limit: int,
        done: Callable[[], int],
        handle: Callable[[RawMessage], None],
    ) -> bool:
        """``handle`` each message until ``done()`` reaches ``limit`` or the queue is empty;
        ``True`` when a stop request ended it first."""
        while done() < limit:
            if self._stop_requested:
                return True
            message = source.get(queue)
            if message is None:
                return False
            handle(message)
        return False
