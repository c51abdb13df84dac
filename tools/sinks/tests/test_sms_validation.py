import json

import pytest

from devsinks.phone import is_e164
from devsinks.sms_validation import SmsRequest, ValidationError, validate_sms_request


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("number", ["+15551234567", "+12", "+123456789012345"])
def test_valid_e164(number: str) -> None:
    assert is_e164(number)


@pytest.mark.parametrize(
    "number",
    [
        "15551234567",
        "+05551234567",
        "+1",
        "+1234567890123456",
        "+1555 123",
        "+15551234567\n",
        "+1\u0665\u0665\u0665",
        "",
    ],
)
def test_invalid_e164(number: str) -> None:
    assert not is_e164(number)


def test_valid_request() -> None:
    result = validate_sms_request(body(to="+15551234567", body="hi"), " key-1 ")
    assert result == SmsRequest(to="+15551234567", body="hi", idempotency_key="key-1")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", None),
        (b"{not json", None),
        (b"\xff\xfe", None),
        (b"[1, 2]", None),
        (body(body="hi"), "to"),
        (body(to=None, body="hi"), "to"),
        (body(to=15551234567, body="hi"), "to"),
        (body(to="5551234567", body="hi"), "to"),
        (body(to="+15551234567"), "body"),
        (body(to="+15551234567", body=""), "body"),
        (body(to="+15551234567", body="   "), "body"),
        (body(to="+15551234567", body=["hi"]), "body"),
    ],
)
def test_invalid_body_names_the_field(raw: bytes, field: str | None) -> None:
    result = validate_sms_request(raw, "key-1")
    assert isinstance(result, ValidationError)
    assert result.field == field
    assert result.to_payload()["field"] == field


@pytest.mark.parametrize("key", [None, "", "   ", "k" * 256])
def test_invalid_idempotency_key(key: str | None) -> None:
    result = validate_sms_request(body(to="+15551234567", body="hi"), key)
    assert isinstance(result, ValidationError)
    assert result.field == "Idempotency-Key"


def test_body_errors_are_reported_before_a_missing_key() -> None:
    result = validate_sms_request(body(body="hi"), None)
    assert isinstance(result, ValidationError)
    assert result.field == "to"
