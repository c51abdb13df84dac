"""The HTTP edge as plain ASGI: correlation id, body limit, 500s, metrics and traces."""

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from signup_shared import tracing
from signup_shared.asgi import Message, RequestGuard, Scope, safe_correlation_id

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Route:
    path = "/things/{thing_id}"


def scope(headers: dict[bytes, bytes] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/things/42",
        "headers": list((headers or {}).items()),
    }


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    """Reads the whole body like a framework would, then answers 201 with its length."""
    scope["route"] = Route()
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


async def crash(scope: Scope, receive: Any, send: Any) -> None:
    raise RuntimeError("a bug")


def call(
    app: Any, request: Scope, chunks: list[bytes] | None = None, limit: int | None = 10
) -> list[Message]:
    sent: list[Message] = []
    pending = list(chunks or [b""])

    async def receive() -> Message:
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(RequestGuard(app, limit=limit)(request, receive, send))
    return sent


def status_and_headers(sent: list[Message]) -> tuple[int, dict[bytes, bytes]]:
    start = sent[0]
    return start["status"], dict(start["headers"])


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("test", exporter=exporter)
    yield exporter
    tracing.shutdown()


@pytest.mark.parametrize("supplied", ["abc-123", "a" * 64, "x.y:z_1"])
def test_a_safe_correlation_id_is_kept(supplied: str) -> None:
    assert safe_correlation_id(supplied) == supplied


@pytest.mark.parametrize("supplied", [None, "", "a" * 65, "has space", "bad\nline", "ünï"])
def test_an_unsafe_correlation_id_is_replaced(supplied: str | None) -> None:
    assert safe_correlation_id(supplied) != supplied


def test_the_answer_carries_the_correlation_id_used() -> None:
    status, headers = status_and_headers(call(echo, scope({b"x-correlation-id": b"bad id"})))
    assert status == 201
    assert headers[b"x-correlation-id"] != b"bad id"
    assert len(headers[b"x-correlation-id"]) == 36


def test_a_declared_oversized_body_is_413_without_reading_it() -> None:
    sent = call(echo, scope({b"content-length": b"11"}), [b"x" * 11])
    assert status_and_headers(sent)[0] == 413
    assert orjson.loads(sent[1]["body"])["errors"] == [{"field": "body", "message": "too large"}]


def test_an_absurd_declared_length_is_413_not_an_overflow() -> None:
    assert status_and_headers(call(echo, scope({b"content-length": b"9" * 40})))[0] == 413


def test_a_streamed_oversized_body_is_413() -> None:
    assert status_and_headers(call(echo, scope(), [b"x" * 6, b"x" * 6]))[0] == 413


def test_a_body_within_the_limit_passes() -> None:
    sent = call(echo, scope(), [b"x" * 5, b"x" * 5])
    assert status_and_headers(sent)[0] == 201 and sent[1]["body"] == b"10"


def test_an_unexpected_exception_is_a_logged_500_document() -> None:
    with structlog.testing.capture_logs() as logs:
        sent = call(crash, scope())
    assert [line["event"] for line in logs] == ["http.unhandled_error", "http.request"]
    assert status_and_headers(sent)[0] == 500
    assert orjson.loads(sent[1]["body"]) == {"detail": "internal error", "errors": []}


def test_requests_are_counted_by_route_template_and_status() -> None:
    labels = {"method": "POST", "route": "/things/{thing_id}", "status": "201"}
    before = REGISTRY.get_sample_value("signup_http_requests_total", labels) or 0
    call(echo, scope())
    assert REGISTRY.get_sample_value("signup_http_requests_total", labels) == before + 1


def test_the_callers_trace_is_continued_and_named_after_the_route(
    spans: InMemorySpanExporter,
) -> None:
    call(echo, scope({b"traceparent": PARENT.encode()}))
    [span] = spans.get_finished_spans()
    assert span.name == "POST /things/{thing_id}"
    assert format(span.context.trace_id, "032x") == PARENT.split("-")[1]
