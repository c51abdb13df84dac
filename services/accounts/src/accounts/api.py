"""HTTP views of accounts (FastAPI). Glue only: validate, call one action, commit, answer.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

import functools
import itertools
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from accounts import actions
from accounts.actions import NewSignup
from signup_shared import metrics
from signup_shared.asgi import RequestGuard, document_correlation_id
from signup_shared.db import transaction
from signup_shared.logging import current_correlation_id, new_correlation_id
from signup_shared.process import Check, readiness

EMAIL_MAX_LENGTH = 320
FULL_NAME_MAX_LENGTH = 200
# ``+`` and 8 to 15 ASCII digits, the first not 0: ``\d`` would also accept non-ASCII digits.
E164_ASCII = r"^\+[1-9][0-9]{7,14}$"
# Controls (C0/C1, NUL), format characters (bidi overrides and isolates, zero-width ones,
# soft hyphen), surrogates, line and paragraph separators.
NOT_PRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

log = structlog.get_logger(__name__)


def printable(value: str) -> str:
    """Refuse what would corrupt an email subject, an SMS body or a log line."""
    if value.isprintable():  # the fast path: str.isprintable refuses a superset of NOT_PRINTABLE
        return value
    for char in value:
        if unicodedata.category(char) in NOT_PRINTABLE:
            raise ValueError(f"must be printable text (U+{ord(char):04X} is not)")
    return value


def full_name(value: str) -> str:
    name = printable(value).strip()
    if not name:
        raise ValueError("must not be blank")
    return name


@functools.cache
def not_printable_class() -> str:
    """NOT_PRINTABLE as the body of a regex character class for the OpenAPI schema.

    Python ``re`` syntax (``\\U`` escapes for code points beyond the BMP). Surrogates are left
    out: regex engines refuse them in a class, and valid JSON text cannot carry one alone.
    """
    ranges: list[str] = []
    start: int | None = None
    # Planes 4-13 are unassigned and 15-16 private use: nothing there is in NOT_PRINTABLE.
    codes = itertools.chain(range(0x40000), range(0xE0000, 0xF0001))
    for code in codes:
        category = unicodedata.category(chr(code)) if code < 0xF0000 else ""
        refused = category in NOT_PRINTABLE and category != "Cs"
        if refused and start is None:
            start = code
        elif not refused and start is not None:
            last = code - 1
            ranges.append(_escape(start) if last == start else f"{_escape(start)}-{_escape(last)}")
            start = None
    return "".join(ranges)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def document_full_name(schema: dict[str, Any]) -> None:
    refused = not_printable_class()
    schema["pattern"] = f"^[^{refused}]*[^{refused}\\s][^{refused}]*$"


def fits_email_column(value: str) -> str:
    # Normalisation can change the length; the column counts the normalised address.
    if len(value) > EMAIL_MAX_LENGTH:
        raise ValueError(f"must be at most {EMAIL_MAX_LENGTH} characters")
    return value


FullName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=FULL_NAME_MAX_LENGTH,
        json_schema_extra=document_full_name,
        description="Printable text, trimmed: no control or format characters (bidi "
        "overrides and isolates, zero-width characters), not blank.",
    ),
    AfterValidator(full_name),
]
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH), AfterValidator(fits_email_column)]


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: Email
    full_name: FullName
    plan: Literal["free", "pro", "team"]
    phone: str | None = Field(
        default=None, pattern=E164_ASCII, description="E.164 in ASCII digits, e.g. +14155550123"
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


class ReadinessResponse(BaseModel):
    status: str
    checks: dict[str, str]


ERROR = {"model": ErrorResponse}
UNAVAILABLE = {
    "model": ErrorResponse,
    "description": "The database is unavailable; nothing was saved",
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
}


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


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialise once: FastAPI would validate a returned model again, in another thread hop."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def _database_field(exc: IntegrityError | DataError) -> str:
    diag: Any = getattr(exc.orig, "diag", None)
    constraint = str(getattr(diag, "constraint_name", None))
    column = getattr(diag, "column_name", None)
    return actions.CONSTRAINT_FIELDS.get(constraint) or (str(column) if column else "body")


def create_app(
    sessions: sessionmaker[Session], checks: Mapping[str, Check], max_body_bytes: int = 16384
) -> FastAPI:
    app = FastAPI(
        title="Signup Platform: accounts",
        version="1.0.0",
        description="Sign users up. Each signup publishes a `UserSignedUp` event.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        log.debug("http.invalid_request", errors=[(e["loc"], e["type"]) for e in problems])
        if any(e["type"] == "json_invalid" for e in problems):
            position = next(e["loc"][-1] for e in problems if e["type"] == "json_invalid")
            return error(
                400,
                "request body is not valid JSON",
                [FieldError(field="body", message=f"invalid JSON at character {position}")],
            )
        fields = [FieldError(field=_field(tuple(e["loc"])), message=e["msg"]) for e in problems]
        return error(422, "invalid request", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(actions.EmailAlreadyRegisteredError)
    async def duplicate(_request: Request, exc: Exception) -> JSONResponse:
        return error(409, str(exc), [FieldError(field="email", message="already registered")])

    @app.exception_handler(actions.SignupRejectedError)
    async def rejected(_request: Request, exc: actions.SignupRejectedError) -> JSONResponse:
        return error(422, "invalid request", [FieldError(field=exc.field, message=exc.reason)])

    @app.exception_handler(IntegrityError)
    async def conflict(_request: Request, exc: IntegrityError) -> JSONResponse:
        field = _database_field(exc)
        log.debug("http.integrity_error", field=field, error_type=type(exc.orig).__name__)
        return error(
            409, "conflicts with existing data", [FieldError(field=field, message="conflict")]
        )

    @app.exception_handler(DataError)
    async def unstorable(_request: Request, exc: DataError) -> JSONResponse:
        field = _database_field(exc)
        log.debug("http.data_error", field=field, error_type=type(exc.orig).__name__)
        return error(422, "invalid request", [FieldError(field=field, message="cannot be stored")])

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
        responses={400: ERROR, 409: ERROR, 413: ERROR, 422: ERROR, 503: UNAVAILABLE},
    )
    def post_signup(body: SignupRequest) -> Response:
        signup = NewSignup(
            email=body.email,
            full_name=body.full_name,
            plan=actions.Plan(body.plan),
            phone=body.phone,
        )
        with sessions() as db:
            receipt = _sign_up(db, signup, current_correlation_id() or new_correlation_id())
        response = SignupResponse(
            user_id=receipt.user_id,
            subscription_id=receipt.subscription_id,
            status=receipt.status.value,
        )
        return json_response(response, status.HTTP_201_CREATED)

    @app.get(
        "/users/{user_id}",
        response_model=UserResponse,
        responses={404: ERROR, 422: ERROR, 503: UNAVAILABLE},
    )
    def get_user(user_id: uuid.UUID) -> Response:
        with sessions() as db:
            profile = _get_user(db, user_id, persist=False)
        return json_response(
            UserResponse(
                user_id=profile.user_id,
                email=profile.email,
                full_name=profile.full_name,
                phone=profile.phone,
                plan=profile.plan.value,
                subscription_id=profile.subscription_id,
                status=profile.status.value,
                created_at=profile.created_at,
            )
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadinessResponse,
        responses={503: {"model": ReadinessResponse}},
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
    app.add_middleware(RequestGuard, limit=max_body_bytes)
    return app
