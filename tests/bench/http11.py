"""A minimal HTTP/1.1 client for the load generator: kept connections over ``asyncio.Protocol``.

Enough HTTP for one JSON API: a request is written as prepared bytes, a response is read by
its ``Content-Length`` (a chunked or unframed response is an ``HttpError``: the generator then
reports it as a failed request instead of guessing). Each connection carries one request at a
time; the pool reuses an idle connection, opens a new one when all are busy (up to
``max_connections``, then requests wait their turn), and drops a connection the server closes or
answers with ``Connection: close``.
"""

import asyncio
from collections import deque
from dataclasses import dataclass


class HttpError(Exception):
    """The server's answer could not be read as HTTP/1.1 with a ``Content-Length``."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    consumed: int  # bytes of the buffer this response took
    keep_alive: bool


def parse_response(buffer: bytes | bytearray) -> Response | None:
    """The first complete response in ``buffer`` (None: more bytes needed)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > 65536:
            raise HttpError("response headers longer than 64 KiB")
        return None
    head = bytes(buffer[:end]).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    words = status_line.split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/1.") or not words[1].isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError("chunked responses are not supported")
    length_text = headers.get("content-length")
    if length_text is None or not length_text.isdigit():
        raise HttpError(f"no usable Content-Length: {length_text!r}")
    start = end + 4
    length = int(length_text)
    if len(buffer) < start + length:
        return None
    keep_alive = headers.get("connection", "").lower() != "close" and words[0] != "HTTP/1.0"
    body = bytes(buffer[start : start + length])
    return Response(int(words[1]), body, start + length, keep_alive)


class Http11(asyncio.Protocol):
    """One connection: ``send`` writes a request and returns a future of its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            response = parse_response(self.buffer)
        except HttpError as exc:
            self.waiter = None
            waiter.set_exception(exc)
            self.close()
            return
        if response is not None:
            del self.buffer[: response.consumed]
            self.waiter = None
            waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))
        self.waiter = None

    def send(self, raw: bytes) -> "asyncio.Future[Response]":
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ConnectionPool:
    def __init__(self, host: str, port: int, max_connections: int) -> None:
        self.host, self.port, self.max_connections = host, port, max_connections
        self.idle: deque[Http11] = deque()
        self.waiting: deque[asyncio.Future[Http11 | None]] = deque()
        self.opened = 0
        self.everyone: set[Http11] = set()

    async def _take(self) -> Http11:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
        if self.opened < self.max_connections:
            self.opened += 1
            try:
                _, protocol = await asyncio.get_running_loop().create_connection(
                    Http11, self.host, self.port
                )
            except BaseException:
                self.opened -= 1
                raise
            self.everyone.add(protocol)
            return protocol
        turn: asyncio.Future[Http11 | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        handed = await turn
        return handed if handed is not None else await self._take()

    def _give_back(self, connection: Http11, reusable: bool) -> None:
        if not reusable:
            connection.close()
            self.everyone.discard(connection)
            self.opened -= 1
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(connection if reusable else None)
                return
        if reusable:
            self.idle.append(connection)

    async def request(self, raw: bytes, timeout: float) -> tuple[int, bytes]:
        """Send ``raw`` (a whole HTTP/1.1 request) and return (status, body)."""
        connection = await self._take()
        reusable = False
        try:
            async with asyncio.timeout(timeout):
                response = await connection.send(raw)
            reusable = response.keep_alive and not connection.closed
            return response.status, response.body
        finally:
            self._give_back(connection, reusable)

    def close(self) -> None:
        for connection in self.everyone:
            connection.close()
        self.everyone.clear()
        self.idle.clear()
