"""The documents of the accounts HTTP API: what a request may hold, what an answer holds."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from accounts.api.names import document_full_name, full_name

EMAIL_MAX_LENGTH = 320
FULL_NAME_MAX_LENGTH = 200
# ``+`` and 8 to 15 ASCII digits, the first not 0: ``\d`` would also accept non-ASCII digits.
E164_ASCII = r"^\+[1-9][0-9]{7,14}$"


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
        "overrides and isolates, zero-width characters), not blank. The pattern is "
        "ECMA-262 with the u flag (code points, as JSON Schema validators compile it).",
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
    locale: str = Field(description="BCP 47 tag negotiated from the signup's Accept-Language")


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


class ErasureResponse(BaseModel):
    user_id: uuid.UUID
    status: Literal["pending", "complete"] = Field(
        description="complete once every holder of the user's data has confirmed the erasure"
    )
    requested_at: datetime
    completed_at: datetime | None
    confirmed: list[str] = Field(description="the services that have erased the user's data")
    waiting_for: list[str] = Field(description="the services that have not confirmed yet")


class GoneResponse(BaseModel):
    detail: str
    erasure: ErasureResponse


AUTH_ERROR = {
    "model": ErrorResponse,
    "description": "Missing, malformed, unknown, expired or revoked API key",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}
FORBIDDEN = {
    "model": ErrorResponse,
    "description": "The API key is valid but lacks the scope this operation needs",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}
