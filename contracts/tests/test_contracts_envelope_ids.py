"""Correlation and causation ids: bounded in characters (the outbox column) and in UTF-8 bytes
(an AMQP short string), refused when an envelope is made and when one is decoded."""

import json

import pytest
from pydantic import ValidationError

from signup_contracts import Envelope
from signup_contracts.envelope import ID_MAX_BYTES, ID_MAX_CHARACTERS, bounded_id, parse_envelope
from signup_contracts.testing import user_signed_up


@pytest.mark.parametrize(
    "value",
    ["", "c-1", "x" * ID_MAX_CHARACTERS, "é" * ID_MAX_CHARACTERS, "€" * (ID_MAX_BYTES // 3)],
)
def test_ids_within_both_bounds_are_kept(value: str) -> None:
    assert bounded_id(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * (ID_MAX_CHARACTERS + 1), "101 characters"),
        ("€" * ID_MAX_CHARACTERS, "300 bytes"),  # fits the column, not a short string
        ("€" * (ID_MAX_BYTES // 3 + 1), "258 bytes"),
        ("\ud800", "lone surrogates"),
    ],
)
def test_ids_beyond_a_bound_are_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        bounded_id(value)


def test_an_envelope_with_an_oversized_correlation_id_cannot_be_created() -> None:
    event = user_signed_up()
    with pytest.raises(ValidationError, match="correlation_id"):
        Envelope.wrap(event.data, producer="accounts", correlation_id="€" * 100)


def test_an_envelope_with_an_oversized_causation_id_cannot_be_created() -> None:
    event = user_signed_up()
    with pytest.raises(ValidationError, match="causation_id"):
        Envelope.wrap(event.data, producer="accounts", correlation_id="c", causation_id="x" * 101)


def test_an_incoming_event_with_an_oversized_correlation_id_is_refused_at_decode() -> None:
    body = json.loads(user_signed_up().to_json())
    body["correlation_id"] = "€" * 100
    with pytest.raises(ValidationError, match="255 bytes"):
        parse_envelope(json.dumps(body))


def test_a_caused_event_keeps_a_bounded_correlation_id() -> None:
    cause = user_signed_up(correlation_id="€" * (ID_MAX_BYTES // 3))
    caused = cause.caused(cause.data, producer="provisioning")
    assert caused.correlation_id == cause.correlation_id
    assert caused.causation_id == str(cause.id)
