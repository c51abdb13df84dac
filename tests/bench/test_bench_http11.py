"""Unit tests of the load generator's HTTP/1.1 client: response framing, one connection's
protocol (with a fake transport), and the request bytes and outcomes of the generator."""

import asyncio

import orjson
import pytest
from http11 import Http11, HttpError, parse_response
from loadgen import outcome, request_bytes

CREATED = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n"
BODY = b'{"user_id":"u-1"}'


def test_a_complete_response_is_read_by_its_content_length_and_the_rest_left() -> None:
    response = parse_response(CREATED + BODY + b"HTTP/1.1 2")
    assert response is not None
    assert (response.status, response.body, response.keep_alive) == (201, BODY, True)
    assert response.consumed == len(CREATED + BODY)


@pytest.mark.parametrize("cut", [10, len(CREATED) - 1, len(CREATED), len(CREATED) + 5])
def test_a_partial_response_asks_for_more(cut: int) -> None:
    assert parse_response((CREATED + BODY)[:cut]) is None


def test_connection_close_and_http_1_0_are_not_kept() -> None:
    closing = b"HTTP/1.1 503 Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert [r.keep_alive for r in map(parse_response, (closing, old)) if r] == [False, False]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"SMTP ready\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nbody", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
    ],
)
def test_responses_it_cannot_frame_are_clear_errors(raw: bytes, message: str) -> None:
    with pytest.raises(HttpError, match=message):
        parse_response(raw)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def test_one_connection_answers_each_request_from_bytes_arriving_in_pieces() -> None:
    async def scenario() -> tuple[list[int], list[bytes]]:
        protocol, transport = Http11(), FakeTransport()
        protocol.connection_made(transport)
        statuses = []
        for _ in range(2):
            answer = protocol.send(b"GET / HTTP/1.1\r\n\r\n")
            protocol.data_received(CREATED[:20])
            assert not answer.done()
            protocol.data_received(CREATED[20:] + BODY)
            statuses.append((await answer).status)
        return statuses, transport.written

    statuses, written = asyncio.run(scenario())
    assert statuses == [201, 201] and len(written) == 2


def test_a_dropped_connection_or_garbage_fails_the_waiting_request() -> None:
    async def scenario() -> tuple[BaseException | None, BaseException | None, bool]:
        dropped, garbage, transport = Http11(), Http11(), FakeTransport()
        dropped.connection_made(FakeTransport())
        garbage.connection_made(transport)
        first, second = dropped.send(b"x"), garbage.send(b"x")
        dropped.connection_lost(None)
        garbage.data_received(b"nonsense\r\n\r\n")
        return first.exception(), second.exception(), transport.closed

    lost, bad, closed = asyncio.run(scenario())
    assert isinstance(lost, ConnectionResetError)
    assert isinstance(bad, HttpError) and closed


def test_the_request_is_http_1_1_with_a_json_body_and_its_length() -> None:
    raw = request_bytes("127.0.0.1:8000", "/signups", {"email": "a@example.com"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /signups HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert orjson.loads(body) == {"email": "a@example.com"}


def test_an_outcome_takes_the_user_id_from_a_201_only() -> None:
    created = outcome(1.0, 1.5, 201, BODY)
    assert (created.ok, created.user_id, created.lag, created.failure) == (True, "u-1", 0.5, None)
    refused = outcome(1.0, 1.0, 422, b'{"user_id":"u-2"}')
    assert (refused.ok, refused.user_id, refused.failure) == (False, None, "HTTP 422")
    unreadable = outcome(1.0, 1.0, 201, b"not json")
    assert (unreadable.ok, unreadable.failure) == (False, None)
