"""The email of an event: a structural check that lets through all email-validator accepts."""

import json

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from signup_contracts import UserSignedUpV2, emails
from signup_contracts.envelope import parse_envelope
from signup_contracts.testing import user_signed_up

ACCEPTED = [
    "someone.name@example.com",
    "ñoño@example.com",
    "user@bücher.de",
    "a+tag@sub.example.co.uk",
    "o'brien@x.io",
    "x@a-b.io",
    "12345@example.com",
    "用户@例子.广告",
    "a" * 64 + "@example.com",
    "a" * 100 + "@example.com",  # no local part limit outside email-validator's strict mode
]
HOSTILE = [
    "",
    "no-at",
    "a@b",
    "a@@b.cd",
    "a b@c.de",
    "a\n@c.de",
    "a@c.de\n",
    "<a>@c.de",
    '"a"@c.de',
    "a@c..de",
    ".a@c.de",
    "a.@c.de",
    "a..b@c.de",
    "a@-c.de",
    "a@c-.de",
    "a@c.de>",
    "Name <a@c.de>",
    "a@[1.2.3.4]",
    "a@c.de\r\nBcc: x@y.z",
    "a\x00@c.de",
    "a\u202e@c.de",  # a bidi override
    "a\u200b@c.de",  # a zero-width space
    "a" * 250 + "@example.com",
    "a@" + "b" * 64 + ".de",
    "x@" + ".".join(["d" * 60] * 5) + ".de",  # longer than 254 characters
]


@pytest.mark.parametrize("address", ACCEPTED)
def test_real_addresses_pass(address: str) -> None:
    validate_email(address, check_deliverability=False)  # the API's own check accepts it too
    assert emails.email_shaped(address) == address


@pytest.mark.parametrize("address", HOSTILE)
def test_hostile_or_broken_addresses_fail_and_email_validator_agrees(address: str) -> None:
    assert not emails.is_email_shaped(address)
    with pytest.raises(EmailNotValidError):
        validate_email(address, check_deliverability=False)


@given(st.emails())
def test_everything_the_api_accepts_passes(address: str) -> None:
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return
    assert emails.is_email_shaped(normalized)


@given(
    st.text(
        alphabet=st.sampled_from('ab.-+_@"<> \t\n\x00\u202e\u00e9\u4e2d()[],;:\\'),
        max_size=30,
    )
)
def test_nothing_email_validator_refuses_for_its_characters_gets_through(text: str) -> None:
    """Noisy text: what passes here also passes email-validator (as the API would have it),
    except where email-validator only refuses the domain it cannot route (a dotless or all-digit
    top-level label is still structurally an address)."""
    if not emails.is_email_shaped(text):
        return
    for forbidden in '\t\n\x00\u202e "<>()[],;:\\':
        assert forbidden not in text
    assert text.count("@") == 1


def test_a_hostile_event_is_refused_with_a_reason_that_does_not_carry_the_address() -> None:
    body = json.loads(user_signed_up().to_json())
    body["data"]["email"] = "victim@example.com\r\nBcc: all@example.com"
    with pytest.raises(ValidationError) as caught:
        parse_envelope(json.dumps(body))
    [error] = caught.value.errors()
    assert error["loc"] == ("data", "email")
    assert "must be an email address" in error["msg"]
    assert "victim" not in error["msg"]


def test_the_json_schema_is_still_format_email() -> None:
    schema = UserSignedUpV2.model_json_schema()
    assert schema["properties"]["email"] == {"format": "email", "title": "Email", "type": "string"}
