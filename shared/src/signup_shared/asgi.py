"""The outermost layer of every HTTP API, as plain ASGI (no web framework imported here).

``RequestGuard`` gives each request a safe correlation id (echoed in the answer), a trace (the
caller's ``traceparent`` continued, else a new one), a body limit that answers 413 whether the
body declares its length or streams it, a logged 500 for an unexpected exception, one INFO line
and the request metrics. It adds no task and copies no body.
"""

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import structlog

from signup_shared import metrics, tracing
from signup_shared.logging import correlation_scope, new_correlation_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode()
_TRACEPARENT_KEY = tracing.TRACEPARENT.encode()
# Short enough for every correlation_id column, and safe to echo into headers and logs.
SAFE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_DECLARED_LENGTH_DIGITS = 18

log = structlog.get_logger(__name__)


def safe_correlation_id(value: str | None) -> str:
    """The caller's id when it is a short safe token, else a fresh one."""
    if value is not None and SAFE_CORRELATION_ID.fullmatch(value):
        return value
    return new_correlation_id()


def route_of(scope: Scope) -> str:
    """The matched path template, never the raw path (it may hold ids or arbitrary text)."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def error_body(detail: str, field: str | None = None, message: str = "") -> bytes:
    """The APIs' error document: ``{"detail": ..., "errors": [{"field", "message"}]}``."""
    errors = [{"field": field, "message": message}] if field else []
    return orjson.dumps({"detail": detail, "errors": errors})


async def answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLargeError(Exception):
    pass


class _Answer:
    """What the application has answered so far."""

    def __init__(self) -> None:
        self.status, self.started, self.too_large = 500, False, False


class RequestGuard:
    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        supplied = headers.get(_CORRELATION_KEY)
        correlation_id = safe_correlation_id(supplied.decode("latin-1") if supplied else None)
        state = _Answer()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status, state.started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (_CORRELATION_KEY, correlation_id.encode()),
                ]
            await send(message)

        async def replaced_when_too_large(message: Message) -> None:
            # A framework turns a failing body read into its own 400: answer 413 instead.
            if not state.too_large:
                await send_with_id(message)
            elif message["type"] == "http.response.start":
                await self._too_large(send_with_id)

        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if self.limit is not None and seen > self.limit:
                state.too_large = True
                raise _TooLargeError
            return message

        method = str(scope.get("method", ""))
        with (
            correlation_scope(correlation_id),
            tracing.span(method, headers.get(_TRACEPARENT_KEY), tracing.SERVER),
        ):
            try:
                if self._declares_too_much(headers.get(b"content-length", b"")):
                    await self._too_large(send_with_id)
                else:
                    await self.app(scope, limited, replaced_when_too_large)
            except _TooLargeError:
                if state.started:
                    raise
                await self._too_large(send_with_id)
            except Exception:
                log.exception("http.unhandled_error")
                if state.started:
                    raise
                await answer(send_with_id, 500, error_body("internal error"))
            finally:
                route = route_of(scope)
                tracing.rename_current(f"{method} {route}")
                elapsed = time.perf_counter() - started
                metrics.HTTP_REQUESTS.labels(method, route, str(state.status)).inc()
                metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
                log.info(
                    "http.request",
                    method=method,
                    route=route,
                    status=state.status,
                    duration_ms=round(elapsed * 1000, 2),
                )

    def _declares_too_much(self, declared: bytes) -> bool:
        if self.limit is None or not declared.isdigit():
            return False
        return len(declared) > MAX_DECLARED_LENGTH_DIGITS or int(declared) > self.limit

    async def _too_large(self, send: Send) -> None:
        body = error_body(f"request body larger than {self.limit} bytes", "body", "too large")
        await answer(send, 413, body)


def document_correlation_id(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI: every operation takes an optional ``X-Correlation-ID``; every answer has one."""
    parameter = {
        "name": CORRELATION_HEADER,
        "in": "header",
        "required": False,
        "description": f"Kept when it matches ^{SAFE_CORRELATION_ID.pattern}$, otherwise replaced",
        "schema": {"type": "string"},
    }
    header = {
        "description": "The correlation id used for this request",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{SAFE_CORRELATION_ID.pattern}$"},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("parameters", []).append(parameter)
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[CORRELATION_HEADER] = header
    return schema
