"""How the accounts HTTP API answers a refusal: one error document, the field named."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from accounts import actions, erasure, keys
from accounts.api.schemas import ErrorResponse, FieldError

log = structlog.get_logger(__name__)


def error(status_code: int, detail: str, errors: list[FieldError] | None = None) -> JSONResponse:
    body = ErrorResponse(detail=detail, errors=errors or [])
    return JSONResponse(status_code=status_code, content=body.model_dump())


def request_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def database_field(exc: IntegrityError | DataError) -> str:
    diag: Any = getattr(exc.orig, "diag", None)
    constraint = str(getattr(diag, "constraint_name", None))
    column = getattr(diag, "column_name", None)
    return actions.CONSTRAINT_FIELDS.get(constraint) or (str(column) if column else "body")


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
    fields = [FieldError(field=request_field(tuple(e["loc"])), message=e["msg"]) for e in problems]
    return error(422, "invalid request", fields)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    response = error(exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (Starlette names only the first route's,
    and ``/users/{user_id}`` has one route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def duplicate(_request: Request, exc: Exception) -> JSONResponse:
    return error(409, str(exc), [FieldError(field="email", message="already registered")])


async def rejected(_request: Request, exc: actions.SignupRejectedError) -> JSONResponse:
    return error(422, "invalid request", [FieldError(field=exc.field, message=exc.reason)])


async def conflict(_request: Request, exc: IntegrityError) -> JSONResponse:
    field = database_field(exc)
    log.debug("http.integrity_error", field=field, error_type=type(exc.orig).__name__)
    return error(409, "conflicts with existing data", [FieldError(field=field, message="conflict")])


async def unstorable(_request: Request, exc: DataError) -> JSONResponse:
    field = database_field(exc)
    log.debug("http.data_error", field=field, error_type=type(exc.orig).__name__)
    return error(422, "invalid request", [FieldError(field=field, message="cannot be stored")])


async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    response = error(503, "the database is unavailable; nothing was saved, please retry")
    response.headers["Retry-After"] = "1"
    return response


async def not_found(_request: Request, _exc: Exception) -> JSONResponse:
    return error(404, "user not found")


async def not_authenticated(_request: Request, exc: keys.NotAuthenticatedError) -> JSONResponse:
    response = error(401, exc.refusal.value)
    error_code = "invalid_request" if exc.refusal is keys.Refusal.MISSING else "invalid_token"
    response.headers["WWW-Authenticate"] = f'Bearer realm="accounts", error="{error_code}"'
    return response


async def forbidden(_request: Request, exc: keys.ForbiddenError) -> JSONResponse:
    response = error(403, f"this API key lacks the scope {exc.scope.value}")
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="accounts", error="insufficient_scope", scope="{exc.scope.value}"'
    )
    return response


def install(app: FastAPI) -> None:
    """Answer each refusal with its status and the error document naming the field."""
    handlers: list[tuple[type[Exception], Any]] = [
        (RequestValidationError, invalid),
        (StarletteHTTPException, http_error),
        (actions.EmailAlreadyRegisteredError, duplicate),
        (actions.SignupRejectedError, rejected),
        (IntegrityError, conflict),
        (DataError, unstorable),
        (OperationalError, database_unavailable),
        (InterfaceError, database_unavailable),
        (actions.UserNotFoundError, not_found),
        (erasure.UnknownUserError, not_found),
        (keys.NotAuthenticatedError, not_authenticated),
        (keys.ForbiddenError, forbidden),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
