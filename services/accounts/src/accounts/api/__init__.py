"""HTTP views of accounts (FastAPI). Glue only: validate, call one action, commit, answer.

Everything framework-specific lives in this package (the documents in ``schemas``, the name
rule in ``names``, the error answers in ``errors``), so replacing FastAPI touches only it.

Health, as an orchestrator reads it:

- ``GET /healthz`` is liveness: the process answers HTTP. It checks nothing else, so a restart
  happens only when the process is stuck, never because a server it depends on is down.
- ``GET /readyz`` is readiness: the application has started (and is not shutting down) and the
  database answers ``SELECT 1``; else 503, and the instance leaves the load balancer until it
  recovers. The broker is deliberately not a readiness condition: a signup is written with its
  event into the outbox in one database transaction, and the relay publishes it whenever the
  broker is back. Refusing traffic during a broker outage would defeat that outbox, and probing
  the broker would open an AMQP connection per probe. The broker's state shows where it is
  used: the relay's own ``/readyz`` and the outbox metrics and alerts.
"""

import contextlib
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Header, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from accounts import actions, erasure
from accounts.actions import NewSignup
from accounts.api import data_keys, errors, locales, users
from accounts.api.schemas import (
    ERROR,
    UNAVAILABLE,
    ReadinessResponse,
    SignupRequest,
    SignupResponse,
)
from signup_shared import metrics
from signup_shared.asgi import RequestGuard, document_correlation_id
from signup_shared.db import transaction
from signup_shared.logging import current_correlation_id, new_correlation_id
from signup_shared.process import Check, readiness

__all__ = ["SignupRequest", "create_app"]


@transaction
def _sign_up(
    session: Session, signup: NewSignup, correlation_id: str, versions: Sequence[int]
) -> actions.SignupReceipt:
    return actions.sign_up(session, signup, correlation_id=correlation_id, versions=versions)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialise once: FastAPI would validate a returned model again, in another thread hop."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def create_app(
    sessions: sessionmaker[Session],
    checks: Mapping[str, Check],
    max_body_bytes: int = 16384,
    user_signed_up_versions: Sequence[int] = actions.PUBLISHED_VERSIONS,
    erasure_holders: Sequence[str] = erasure.HOLDERS,
) -> FastAPI:
    """The API; ``checks`` decide readiness (the database's; see the module's docstring);
    ``user_signed_up_versions``: the ``UserSignedUp`` versions each signup publishes;
    ``erasure_holders``: the services that must confirm an erasure."""
    versions = tuple(user_signed_up_versions)
    started = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        started.set()
        try:
            yield
        finally:
            started.clear()

    ready_when = {"started": started.is_set, **checks}
    app = FastAPI(
        title="Signup Platform: accounts",
        version="1.0.0",
        description=(
            "Sign users up (public: the signup form's backend). Each signup publishes a "
            "`UserSignedUp` event. Reading and erasing users is internal: a per-client API key "
            "with the scope the operation names (`users:read`, `users:erase`). `/healthz`, "
            "`/readyz` and `/metrics` answer anyone who reaches the port: they are meant for "
            "the cluster only (probes, Prometheus); the ingress exposes `/signups` alone."
        ),
        lifespan=lifespan,
    )
    errors.install(app)

    @app.post(
        "/signups",
        status_code=status.HTTP_201_CREATED,
        response_model=SignupResponse,
        responses={400: ERROR, 409: ERROR, 413: ERROR, 422: ERROR, 503: UNAVAILABLE},
    )
    def post_signup(
        body: SignupRequest,
        accept_language: Annotated[
            str | None,
            Header(
                description="The user's languages: the preferred supported one "
                f"({', '.join(locales.SUPPORTED)}; else {locales.DEFAULT}) becomes their locale"
            ),
        ] = None,
    ) -> Response:
        signup = NewSignup(
            email=body.email,
            full_name=body.full_name,
            plan=actions.Plan(body.plan),
            phone=body.phone,
            locale=locales.negotiate(accept_language),
        )
        correlation_id = current_correlation_id() or new_correlation_id()
        with sessions() as db:
            receipt = _sign_up(db, signup, correlation_id, versions)
        response = SignupResponse(
            user_id=receipt.user_id,
            subscription_id=receipt.subscription_id,
            status=receipt.status.value,
        )
        return json_response(response, status.HTTP_201_CREATED)

    users.install(app, sessions, erasure_holders)
    data_keys.install(app, sessions)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadinessResponse,
        responses={503: {"model": ReadinessResponse}},
    )
    def readyz() -> JSONResponse:
        """Readiness: started and the database answers (the broker is not a condition)."""
        ok, results = readiness(ready_when)
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ok" if ok else "unavailable", "checks": results},
        )

    # Probes and scrapers may ask with HEAD: the same answer without its body (undocumented).
    for path, view in (
        ("/healthz", healthz),
        ("/readyz", readyz),
        ("/metrics", prometheus_metrics),
    ):
        app.add_api_route(path, view, methods=["HEAD"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_correlation_id(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestGuard, limit=max_body_bytes)
    return app
