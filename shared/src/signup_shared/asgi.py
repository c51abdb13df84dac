"""The outermost layer of every HTTP API, as plain ASGI (no web framework imported here).

``RequestGuard`` gives each request a safe correlation id (echoed in the answer), a trace (the
caller's ``traceparent`` continued, else a new one), a body limit that answers 413 whether the
body declares its length or streams it, a logged 500 for an unexpected exception, one INFO line
and the request metrics. It adds no task and copies no body.

``ApiDocs`` (inside every ``RequestGuard`` unless ``api_docs=False``) serves ``/docs`` (Swagger
UI) and ``/redoc`` (ReDoc) for the application's ``/openapi.json`` with the browser bundles
shipped in this package (``signup_shared/apidocs``), never from a CDN: the pages work offline.
"""

import functools
import html
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any

import orjson
import structlog

from signup_contracts.amqp import TRACEPARENT_HEADER
from signup_shared import metrics, tracing
from signup_shared.logging import correlation_scope, new_correlation_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode()
_TRACEPARENT_KEY = TRACEPARENT_HEADER.encode()  # the HTTP header of the same name
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


DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets/"
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{assets}swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{assets}swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{openapi}", dom_id: "#swagger-ui", deepLinking: true,
  layout: "BaseLayout", presets: [SwaggerUIBundle.presets.apis]}});</script>
</body></html>
"""
_REDOC_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{assets}favicon-32x32.png"></head>
<body><redoc spec-url="{openapi}"></redoc>
<script src="{assets}redoc.standalone.js"></script></body></html>
"""


@functools.cache
def docs_asset(name: str) -> bytes:
    """One of the packaged browser files (read once)."""
    return (resources.files("signup_shared") / "apidocs" / name).read_bytes()


class _DocsRoute:
    def __init__(self, path: str) -> None:
        self.path = path


class ApiDocs:
    """``GET``/``HEAD`` ``/docs``, ``/redoc`` and their assets; everything else goes to ``app``."""

    def __init__(
        self, app: ASGIApp, openapi_url: str = "/openapi.json", title: str = "API"
    ) -> None:
        self.app, self.openapi_url, self.title = app, openapi_url, title

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or scope.get("method") not in {"GET", "HEAD"}:
            await self.app(scope, receive, send)
        elif path in {DOCS_PATH, REDOC_PATH}:
            scope["route"] = _DocsRoute(path)
            root = str(scope.get("root_path", ""))
            page = _SWAGGER_PAGE if path == DOCS_PATH else _REDOC_PAGE
            title = getattr(scope.get("app"), "title", None) or self.title
            text = page.format(
                title=html.escape(str(title)),
                assets=html.escape(root + ASSETS_PATH),
                openapi=html.escape(root + self.openapi_url),
            )
            await self._send(scope, send, 200, text.encode(), "text/html; charset=utf-8")
        elif path.startswith(ASSETS_PATH):
            scope["route"] = _DocsRoute(ASSETS_PATH + "{name}")
            name = path.removeprefix(ASSETS_PATH)
            if name in ASSET_TYPES:
                await self._send(scope, send, 200, docs_asset(name), ASSET_TYPES[name])
            else:
                body = error_body("not found")
                await self._send(scope, send, 404, body, "application/json")
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _send(scope: Scope, send: Send, status: int, body: bytes, kind: str) -> None:
        headers = [
            (b"content-type", kind.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"public, max-age=86400" if status == 200 else b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


class RequestGuard:
    def __init__(self, app: ASGIApp, limit: int | None = None, api_docs: bool = True) -> None:
        self.app, self.limit = (ApiDocs(app) if api_docs else app), limit

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
