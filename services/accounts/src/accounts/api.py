"""HTTP views of accounts (FastAPI). Glue only: validate, call one action, commit, answer.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts import actions
from accounts.actions import NewSignup
from signup_shared.db import transaction
from signup_shared.logging import correlation_scope, current_correlation_id, new_correlation_id
from signup_shared.process import Check, readiness

CORRELATION_HEADER = "X-Correlation-ID"
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: EmailStr = Field(max_length=320)
    full_name: FullName
    plan: Literal["free", "pro", "team"]
    phone: str | None = Field(
        default=None, pattern=r"^\+[1-9]\d{1,14}$", description="E.164, e.g. +14155550123"
    )


class SignupResponse(BaseModel):
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    status: str


class UserResponse(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    phone: str | None
    plan: str
    subscription_id: uuid.UUID
    status: str
    created_at: datetime


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = []


@transaction
def _sign_up(session: Session, signup: NewSignup, correlation_id: str) -> actions.SignupReceipt:
    return actions.sign_up(session, signup, correlation_id=correlation_id)


@transaction
def _get_user(session: Session, user_id: uuid.UUID) -> actions.UserProfile:
    return actions.get_user(session, user_id)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def error(status_code: int, detail: str, errors: list[FieldError] | None = None) -> JSONResponse:
    body = ErrorResponse(detail=detail, errors=errors or [])
    return JSONResponse(status_code=status_code, content=body.model_dump())


class BodyLimit:
    """Answer 413 to request bodies over ``limit`` bytes, declared or streamed."""

    class TooLarge(Exception):
        pass

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyLimit.TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyLimit.TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(
            413,
            f"request body larger than {self.limit} bytes",
            [FieldError(field="body", message="too large")],
        )
        await response(scope, receive, send)


def create_app(
    sessions: sessionmaker[Session], checks: Mapping[str, Check], max_body_bytes: int = 16384
) -> FastAPI:
    app = FastAPI(
        title="Signup Platform: accounts",
        version="1.0.0",
        description="Sign users up. Each signup publishes a `UserSignedUp` event.",
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

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_field(tuple(e["loc"])), message=e["msg"]) for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return error(
                400,
                "request body is not valid JSON",
                [FieldError(field="body", message="invalid JSON")],
            )
        return error(422, "invalid request", errors)

    @app.exception_handler(actions.EmailAlreadyRegisteredError)
    async def duplicate(_request: Request, exc: Exception) -> JSONResponse:
        return error(409, str(exc), [FieldError(field="email", message="already registered")])

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
        response = error(503, "the database is unavailable; nothing was saved, please retry")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(actions.UserNotFoundError)
    async def not_found(_request: Request, _exc: Exception) -> JSONResponse:
        return error(404, "user not found")

    @app.post(
        "/signups",
        status_code=status.HTTP_201_CREATED,
        response_model=SignupResponse,
        responses={
            400: {"model": ErrorResponse},
            409: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
        },
    )
    def post_signup(body: SignupRequest, db: SessionDep) -> SignupResponse:
        signup = NewSignup(
            email=body.email,
            full_name=body.full_name,
            plan=actions.Plan(body.plan),
            phone=body.phone,
        )
        receipt = _sign_up(db, signup, current_correlation_id() or new_correlation_id())
        return SignupResponse(
            user_id=receipt.user_id,
            subscription_id=receipt.subscription_id,
            status=receipt.status.value,
        )

    @app.get(
        "/users/{user_id}", response_model=UserResponse, responses={404: {"model": ErrorResponse}}
    )
    def get_user(user_id: uuid.UUID, db: SessionDep) -> UserResponse:
        profile = _get_user(db, user_id, persist=False)
        return UserResponse(
            user_id=profile.user_id,
            email=profile.email,
            full_name=profile.full_name,
            phone=profile.phone,
            plan=profile.plan.value,
            subscription_id=profile.subscription_id,
            status=profile.status.value,
            created_at=profile.created_at,
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ok, results = readiness(checks)
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ok" if ok else "unavailable", "checks": results},
        )

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
