"""HTTP views of accounts (FastAPI). Glue only: validate, call one action, commit, answer.

Everything framework-specific lives in this module, so replacing FastAPI touches only it.
"""

import functools
import itertools
import re
import time
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts import actions
from accounts.actions import NewSignup
from signup_shared.db import transaction
from signup_shared.logging import correlation_scope, current_correlation_id, new_correlation_id
from signup_shared.process import Check, readiness

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_HEADER_KEY = CORRELATION_HEADER.lower().encode()
# Short enough for every correlation_id column, and safe to echo into headers and logs.
SAFE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
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


def safe_correlation_id(value: str | None) -> str:
    """The caller's id when it is a short safe token, else a fresh one."""
    if value is not None and SAFE_CORRELATION_ID.fullmatch(value):
        return value
    return new_correlation_id()


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


def _database_field(exc: IntegrityError | DataError) -> str:
    diag: Any = getattr(exc.orig, "diag", None)
    constraint = str(getattr(diag, "constraint_name", None))
    column = getattr(diag, "column_name", None)
    return actions.CONSTRAINT_FIELDS.get(constraint) or (str(column) if column else "body")


def _route(scope: Scope) -> str:
    """The matched path template, never the raw path (it may hold ids or arbitrary text)."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    return str(scope["path"]) if "endpoint" in scope else "unmatched"


class _Answer:
    """What the application has answered so far."""

    def __init__(self) -> None:
        self.status, self.started, self.too_large = 500, False, False


class RequestGuard:
    """Outermost layer of every request, as plain ASGI (no extra task, no body copy).

    Binds a safe correlation id (echoed in the response), answers 413 to bodies over ``limit``
    bytes whether declared or streamed, turns an unexpected exception into a logged 500 and
    writes one INFO line per request.
    """

    class TooLarge(Exception):
        pass

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        supplied = headers.get(_CORRELATION_HEADER_KEY)
        correlation_id = safe_correlation_id(supplied.decode("latin-1") if supplied else None)
        answer = _Answer()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status, answer.started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (_CORRELATION_HEADER_KEY, correlation_id.encode()),
                ]
            await send(message)

        async def replaced_when_too_large(message: Message) -> None:
            # The framework turns a failing body read into its own 400: answer 413 instead.
            if not answer.too_large:
                await send_with_id(message)
            elif message["type"] == "http.response.start":
                await self._too_large(scope, receive, send_with_id)

        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                answer.too_large = True
                raise RequestGuard.TooLarge
            return message

        with correlation_scope(correlation_id):
            try:
                declared = headers.get(b"content-length", b"")
                if declared.isdigit() and (len(declared) > 18 or int(declared) > self.limit):
                    await self._too_large(scope, receive, send_with_id)
                else:
                    await self.app(scope, limited, replaced_when_too_large)
            except RequestGuard.TooLarge:
                if answer.started:
                    raise
                await self._too_large(scope, receive, send_with_id)
            except Exception:
                log.exception("http.unhandled_error")
                if answer.started:
                    raise
                await error(500, "internal error")(scope, receive, send_with_id)
            finally:
                log.info(
                    "http.request",
                    method=scope["method"],
                    route=_route(scope),
                    status=answer.status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )

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
