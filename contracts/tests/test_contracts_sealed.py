"""UserSignedUp v3 (sealed): the personal fields open only with the user's key, for this event."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from signup_contracts import (
    UnsealError,
    UserSignedUpV2,
    UserSignedUpV3,
    history_versions,
    is_redacted,
    parse_envelope,
    redacted,
    registered_events,
    seal,
    seal_envelope,
    unseal,
    unseal_envelope,
)
from signup_contracts.envelope import Envelope
from signup_contracts.sealed import KEY_BYTES, new_key

EVENT_ID = uuid.uuid4()


def grace(phone: str | None = "+14155550123") -> UserSignedUpV2:
    return UserSignedUpV2(
        user_id=uuid.uuid4(),
        subscription_id=uuid.uuid4(),
        email="grace.hopper@example.com",
        full_name="Grace Brewster Hopper",
        phone=phone,
        plan="team",
        signed_up_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        locale="de-CH",
    )


@pytest.mark.parametrize("phone", ["+14155550123", None])
def test_seal_then_unseal_gives_the_v2_back(phone: str | None) -> None:
    v2, key = grace(phone), new_key()
    sealed = seal(v2, key, event_id=EVENT_ID)
    assert unseal(sealed, key, event_id=EVENT_ID) == v2


def test_the_sealed_form_holds_no_personal_field_in_clear_and_keeps_the_rest() -> None:
    v2 = grace()
    text = seal(v2, new_key(), event_id=EVENT_ID).model_dump_json()
    for secret in ("grace.hopper", "Grace", "Hopper", "4155550123", "example.com"):
        assert secret not in text
    data = json.loads(text)
    assert set(data) == {"user_id", "subscription_id", "plan", "signed_up_at", "locale", "personal"}
    assert (data["plan"], data["locale"], data["user_id"]) == ("team", "de-CH", str(v2.user_id))
    assert set(data["personal"]) == {"key_id", "nonce", "ciphertext"}


def test_every_seal_uses_a_new_nonce() -> None:
    v2, key = grace(), new_key()
    first, second = (seal(v2, key, event_id=EVENT_ID) for _ in range(2))
    assert first.personal.nonce != second.personal.nonce
    assert first.personal.ciphertext != second.personal.ciphertext


def test_a_wrong_key_does_not_open_it() -> None:
    sealed = seal(grace(), new_key(), event_id=EVENT_ID)
    with pytest.raises(UnsealError, match="do not open"):
        unseal(sealed, new_key(), event_id=EVENT_ID)


def test_a_tampered_ciphertext_does_not_open() -> None:
    key = new_key()
    sealed = seal(grace(), key, event_id=EVENT_ID)
    text = sealed.personal.ciphertext
    flipped = ("A" if text[5] != "A" else "B").join((text[:5], text[6:]))
    tampered = sealed.model_copy(
        update={"personal": sealed.personal.model_copy(update={"ciphertext": flipped})}
    )
    with pytest.raises(UnsealError):
        unseal(tampered, key, event_id=EVENT_ID)


def test_the_block_is_bound_to_its_user_and_its_event() -> None:
    key = new_key()
    sealed = seal(grace(), key, event_id=EVENT_ID)
    with pytest.raises(UnsealError):
        unseal(sealed, key, event_id=uuid.uuid4())  # copied into another event
    moved = sealed.model_copy(update={"user_id": uuid.uuid4()})
    with pytest.raises(UnsealError):
        unseal(moved, key, event_id=EVENT_ID)  # moved onto another user


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match=f"{KEY_BYTES} bytes"):
        seal(grace(), b"short", event_id=EVENT_ID)


def test_without_its_key_a_sealed_signup_reads_as_the_redacted_v2() -> None:
    v2 = grace()
    reading = redacted(seal(v2, new_key(), event_id=EVENT_ID))
    assert is_redacted(reading)
    assert reading.full_name == "erased" and reading.phone is None
    assert (reading.user_id, reading.plan, reading.locale) == (v2.user_id, "team", "de-CH")
    assert "grace" not in reading.model_dump_json().lower()


def test_envelopes_keep_id_times_and_correlation_through_seal_and_unseal() -> None:
    key = new_key()
    event = Envelope.wrap(grace(), producer="accounts", correlation_id="req-1")
    sealed = seal_envelope(event, key)
    assert (sealed.version, sealed.routing_key) == (3, "accounts.user_signed_up.v3")
    wire = parse_envelope(sealed.to_json())
    assert isinstance(wire.data, UserSignedUpV3)
    opened = unseal_envelope(wire, key)
    assert opened == event
    erased = unseal_envelope(wire, None)
    assert (erased.id, erased.version, erased.occurred_at) == (event.id, 2, event.occurred_at)
    assert is_redacted(erased.data)


def test_the_history_keeps_every_version_without_personal_data_in_clear() -> None:
    kept = {(event.event_type, event.version) for event in history_versions()}
    assert kept == set(registered_events()) - {("UserSignedUp", 1), ("UserSignedUp", 2)}
    assert ("UserSignedUp", 3) in kept
