"""One routing key per (producer, event type, version): v1 keeps the unversioned key."""

import pytest

from signup_contracts import UserSignedUp, UserSignedUpV2, published_routing_key
from signup_contracts.amqp import key_version, routing_key, topic_matches, unversioned_key
from signup_contracts.testing import user_signed_up


def test_version_1_keeps_the_key_it_always_had() -> None:
    assert routing_key("accounts", "UserSignedUp") == "accounts.user_signed_up"
    assert routing_key("accounts", "UserSignedUp", 1) == "accounts.user_signed_up"
    assert published_routing_key(UserSignedUp) == "accounts.user_signed_up"


def test_later_versions_have_a_key_of_their_own() -> None:
    assert routing_key("accounts", "UserSignedUp", 2) == "accounts.user_signed_up.v2"
    assert routing_key("accounts", "UserSignedUp", 12) == "accounts.user_signed_up.v12"
    assert published_routing_key(UserSignedUpV2) == "accounts.user_signed_up.v2"


def test_a_binding_to_one_version_does_not_match_the_other() -> None:
    v1, v2 = published_routing_key(UserSignedUp), published_routing_key(UserSignedUpV2)
    assert (topic_matches(v1, v2), topic_matches(v2, v1)) == (False, False)
    assert topic_matches("accounts.user_signed_up.*", v2)  # one version-agnostic way: both keys
    assert topic_matches("accounts.#", v1) and topic_matches("accounts.#", v2)


def test_the_envelope_travels_on_its_versions_key() -> None:
    envelope = user_signed_up()
    assert envelope.routing_key == "accounts.user_signed_up"
    v2 = envelope.model_copy(update={"version": 2})
    assert v2.routing_key == "accounts.user_signed_up.v2"


@pytest.mark.parametrize(
    ("key", "base", "version"),
    [
        ("accounts.user_signed_up", "accounts.user_signed_up", 1),
        ("accounts.user_signed_up.v2", "accounts.user_signed_up", 2),
        ("accounts.user_signed_up.v10", "accounts.user_signed_up", 10),
        ("accounts.user_signed_up.v0", "accounts.user_signed_up.v0", 1),  # not a version
    ],
)
def test_a_key_splits_into_its_event_and_version(key: str, base: str, version: int) -> None:
    assert (unversioned_key(key), key_version(key)) == (base, version)


def test_version_0_has_no_key() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        routing_key("accounts", "UserSignedUp", 0)
