import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from signup_shared.events import (
    Envelope,
    SpaceProvisioned,
    UnknownEventError,
    UserSignedUp,
    event_name,
    parse_envelope,
)


def signed_up(**overrides: object) -> UserSignedUp:
    fields: dict[str, object] = {
        "user_id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "phone": "+14155550123",
        "plan": "pro",
        "signed_up_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    fields.update(overrides)
    return UserSignedUp.model_validate(fields)


def test_event_name_is_snake_case() -> None:
    assert event_name("UserSignedUp") == "user_signed_up"
    assert event_name("SpaceProvisioned") == "space_provisioned"


def test_wrap_fills_the_envelope_and_routing_key() -> None:
    envelope = Envelope.wrap(signed_up(), producer="accounts", correlation_id="corr-1")
    assert (envelope.type, envelope.version) == ("UserSignedUp", 1)
    assert envelope.routing_key == "accounts.user_signed_up"
    assert envelope.occurred_at.tzinfo is not None
    assert envelope.causation_id is None


def test_json_round_trip_gives_the_typed_payload() -> None:
    envelope = Envelope.wrap(signed_up(), producer="accounts", correlation_id="corr-1")
    parsed = parse_envelope(envelope.to_json())
    assert parsed == envelope
    assert isinstance(parsed.data, UserSignedUp)


def test_caused_event_keeps_correlation_and_points_at_its_cause() -> None:
    cause = Envelope.wrap(signed_up(), producer="accounts", correlation_id="corr-1")
    data = SpaceProvisioned(user_id=uuid.uuid4(), space_id=uuid.uuid4(), quota_bytes=10)
    effect = cause.caused(data, producer="provisioning")
    assert effect.correlation_id == "corr-1"
    assert effect.causation_id == str(cause.id)
    assert effect.routing_key == "provisioning.space_provisioned"


def test_unknown_version_is_refused() -> None:
    body = Envelope.wrap(signed_up(), producer="accounts", correlation_id="c").to_json()
    with pytest.raises(UnknownEventError, match="UserSignedUp v9"):
        parse_envelope(body.replace(b'"version":1', b'"version":9'))


@pytest.mark.parametrize(
    "field,value",
    [("email", "not-an-email"), ("phone", "0612"), ("plan", "gold"), ("full_name", "")],
)
def test_payload_is_validated(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        signed_up(**{field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_envelope_requires_an_aware_timestamp() -> None:
    envelope = Envelope.wrap(signed_up(), producer="accounts", correlation_id="c")
    naive = (
        envelope.to_json().replace(b'"occurred_at":"2', b'"occurred_at":"2').replace(b'Z"', b'"', 1)
    )
    with pytest.raises(ValidationError):
        parse_envelope(naive)
