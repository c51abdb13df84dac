"""HTTP read API of stats (FastAPI). Glue only: open a read-only transaction, call one action.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from signup_shared import metrics
from signup_shared.asgi import RequestGuard, document_correlation_id
from signup_shared.db import transaction
from signup_shared.process import Check, readiness
from stats import actions

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


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = []


@transaction
def _read_stats(session: Session) -> actions.Stats:
    return actions.read_stats(session)


def error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"detail": detail, "errors": []})


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

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

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
