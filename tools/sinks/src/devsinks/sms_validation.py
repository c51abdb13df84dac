"""Validation of `POST /messages` requests, independent of any transport."""

import json
from dataclasses import dataclass

from .phone import is_e164

MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class SmsRequest:
    to: str
    body: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ValidationError:
    field: str | None
    message: str

    def to_payload(self) -> dict[str, object]:
        return {"error": "invalid_request", "field": self.field, "message": self.message}


def parse_json_object(raw: bytes) -> dict[str, object] | ValidationError:
    try:
        decoded = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ValidationError(None, "request body must be valid JSON")
    if not isinstance(decoded, dict):
        return ValidationError(None, "request body must be a JSON object")
    return decoded


def validate_sms_request(raw: bytes, idempotency_key: str | None) -> SmsRequest | ValidationError:
    payload = parse_json_object(raw)
    if isinstance(payload, ValidationError):
        return payload
    to = payload.get("to")
    if to is None:
        return ValidationError("to", "field 'to' is required")
    if not isinstance(to, str) or not is_e164(to):
        return ValidationError("to", "field 'to' must be an E.164 phone number like +15551234567")
    body = payload.get("body")
    if body is None:
        return ValidationError("body", "field 'body' is required")
    if not isinstance(body, str) or not body.strip():
        return ValidationError("body", "field 'body' must be a non-empty string")
    key = (idempotency_key or "").strip()
    if not key:
        return ValidationError(IDEMPOTENCY_HEADER, f"header '{IDEMPOTENCY_HEADER}' is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return ValidationError(
            IDEMPOTENCY_HEADER,
            f"header '{IDEMPOTENCY_HEADER}' must be at most "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )
    return SmsRequest(to=to, body=body, idempotency_key=key)
