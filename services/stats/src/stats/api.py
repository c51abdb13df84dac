"""HTTP read API of stats (FastAPI). Glue only: open a read-only transaction, call one action.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

import re
import time
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signup_shared.db import transaction
from signup_shared.logging import correlation_scope, new_correlation_id
from signup_shared.process import Check, readiness
from stats import actions

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_HEADER_KEY = CORRELATION_HEADER.lower().encode()
# Short enough for every correlation_id column, and safe to echo into headers and logs.
SAFE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

log = structlog.get_logger(__name__)


class PlanCounts(BaseModel):
    free: int
    pro: int
    team: int


class StatsResponse(BaseModel):
    total_users: int
    signups_per_plan: PlanCounts
    signups_per_day: dict[str, int] = Field(description="UTC day (YYYY-MM-DD) -> signups")
    activated_subscriptions: int


class ReadinessResponse(BaseModel):
    status: str
    checks: dict[str, str]


class ErrorResponse(BaseModel):
    detail: str


@transaction
def _read_stats(session: Session) -> actions.Stats:
    return actions.read_stats(session)


def error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"detail": detail})


def safe_correlation_id(value: str | None) -> str:
    """The caller's id when it is a short safe token, else a fresh one."""
    if value is not None and SAFE_CORRELATION_ID.fullmatch(value):
        return value
    return new_correlation_id()


def _route(scope: Scope) -> str:
    """The matched path template, never the raw path (it may hold arbitrary text)."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    return str(scope["path"]) if "endpoint" in scope else "unmatched"


class RequestGuard:
    """Plain ASGI outermost layer: a safe correlation id (echoed in the response), a logged 500
    for an unexpected exception, and one INFO line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        supplied = dict(scope["headers"]).get(_CORRELATION_HEADER_KEY)
        correlation_id = safe_correlation_id(supplied.decode("latin-1") if supplied else None)
        answered: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (_CORRELATION_HEADER_KEY, correlation_id.encode()),
                ]
            await send(message)

        with correlation_scope(correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("http.unhandled_error")
                if answered:
                    raise
                await error(500, "internal error")(scope, receive, send_with_id)
            finally:
                log.info(
                    "http.request",
                    method=scope["method"],
                    route=_route(scope),
                    status=answered[0] if answered else 500,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def document_correlation_id(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation takes an optional ``X-Correlation-ID`` and every answer carries one."""
    parameter = {
        "name": CORRELATION_HEADER,
        "in": "header",
        "required": False,
        "description": "Kept when it matches ^[A-Za-z0-9._:-]{1,64}$, otherwise replaced",
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


def create_app(sessions: sessionmaker[Session], checks: Mapping[str, Check]) -> FastAPI:
    app = FastAPI(
        title="Signup Platform: stats",
        version="1.0.0",
        description="User statistics counted from `UserSignedUp` and `SpaceProvisioned` events.",
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
        response = error(503, "the database is unavailable, please retry")
        response.headers["Retry-After"] = "1"
        return response

    @app.get(
        "/stats",
        response_model=StatsResponse,
        responses={
            503: {
                "model": ErrorResponse,
                "description": "The database is unavailable",
                "headers": {"Retry-After": {"schema": {"type": "string"}}},
            }
        },
    )
    def get_stats() -> Response:
        with sessions() as db:
            stats = _read_stats(db, persist=False)
        response = StatsResponse(
            total_users=stats.total_users,
            signups_per_plan=PlanCounts.model_validate(stats.signups_per_plan),
            signups_per_day=stats.signups_per_day,
            activated_subscriptions=stats.activated_subscriptions,
        )
        # Serialise once: FastAPI would validate a returned model again, in another thread hop.
        return Response(response.model_dump_json(), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", response_model=ReadinessResponse, responses={503: {"model": ReadinessResponse}}
    )
    def readyz() -> JSONResponse:
        ok, results = readiness(checks)
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ok" if ok else "unavailable", "checks": results},
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_correlation_id(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestGuard)
    return app
