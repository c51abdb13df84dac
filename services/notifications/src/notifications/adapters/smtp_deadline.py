"""``smtplib.SMTP`` with a total deadline: every read and write of a session ends by it.

A server that accepts the connection and then drips one byte every few seconds never trips a
per-read timeout; here each ``recv`` and ``send`` gets the time left before the deadline as its
socket timeout, so the whole session ends when the deadline passes.
"""

import smtplib
import socket
import time
from typing import Any


class DeadlineExceededError(TimeoutError):
    """The send's total deadline passed (however the server kept the connection busy)."""


class _DeadlineReader:
    """``readline`` for smtplib over the socket, every ``recv`` bounded by the time left."""

    def __init__(self, smtp: "DeadlineSMTP", sock: socket.socket) -> None:
        self.smtp = smtp
        self.sock = sock
        self.buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buffer and (limit < 0 or len(self.buffer) < limit):
            self.sock.settimeout(self.smtp.time_left())
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        if limit >= 0:
            end = min(end, limit)
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        return line

    def close(self) -> None:
        self.buffer = b""


class DeadlineSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose every read and write ends by ``deadline`` (a monotonic time).

    ``timeout`` still bounds each single socket operation; ``deadline`` bounds all of them
    together. Set ``deadline`` again before each use of a kept session.
    """

    def __init__(
        self, host: str = "", port: int = 0, *, timeout: float, deadline: float, **options: Any
    ) -> None:
        self.deadline = deadline
        super().__init__(host, port, timeout=timeout, **options)

    def time_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceededError("SMTP deadline passed")
        return min(left, self.timeout) if isinstance(self.timeout, float | int) else left

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(host, port, self.time_left())  # type: ignore[misc]

    def send(self, s: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(self.time_left())
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.sock is not None and (
            not isinstance(self.file, _DeadlineReader) or self.file.sock is not self.sock
        ):
            self.file = _DeadlineReader(self, self.sock)  # type: ignore[assignment]
        return super().getreply()
