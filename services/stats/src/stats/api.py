"""HTTP read API of stats (FastAPI). Glue only: open a read-only transaction, call one action.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from signup_shared.db import transaction
from signup_shared.logging import correlation_scope
from signup_shared.process import Check, readiness
from stats import actions

CORRELATION_HEADER = "X-Correlation-ID"


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


@transaction
def _read_stats(session: Session) -> actions.Stats:
    return actions.read_stats(session)


def create_app(sessions: sessionmaker[Session], checks: Mapping[str, Check]) -> FastAPI:
    app = FastAPI(
        title="Signup Platform: stats",
        version="1.0.0",
        description="User statistics counted from `UserSignedUp` and `SpaceProvisioned` events.",
    )

    def session() -> Iterator[Session]:
        with sessions() as db:
            yield db

    SessionDep = Annotated[Session, Depends(session)]

    @app.middleware("http")
    async def correlate(request: Request, call_next: Any) -> Response:
        with correlation_scope(request.headers.get(CORRELATION_HEADER)) as correlation_id:
            response: Response = await call_next(request)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    @app.get("/stats", response_model=StatsResponse)
    def get_stats(db: SessionDep) -> StatsResponse:
        stats = _read_stats(db, persist=False)
        return StatsResponse(
            total_users=stats.total_users,
            signups_per_plan=PlanCounts.model_validate(stats.signups_per_plan),
            signups_per_day=stats.signups_per_day,
            activated_subscriptions=stats.activated_subscriptions,
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=ReadinessResponse,
             responses={503: {"model": ReadinessResponse}})
    def readyz() -> JSONResponse:
        ok, results = readiness(checks)
        return JSONResponse(status_code=200 if ok else 503,
                            content={"status": "ok" if ok else "unavailable", "checks": results})

    return app
