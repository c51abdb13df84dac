"""The contracts as a distribution: small dependency tree, the vocabulary, the registry."""

import re
from importlib import metadata

import pytest
from pydantic import ValidationError

from signup_contracts import (
    E164,
    PLANS,
    Envelope,
    SpaceProvisioned,
    UserSignedUp,
    published_routing_key,
    register,
    registered_events,
    routing_key,
    topic_matches,
)
from signup_contracts.testing import user_signed_up

FORBIDDEN = {
    "sqlalchemy",
    "kombu",
    "amqp",
    "pika",
    "psycopg",
    "psycopg-binary",
    "alembic",
    "signup-shared",
    "fastapi",
    "starlette",
}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return match.group(0).lower().replace("_", "-")


def _dependency_tree(distribution: str) -> set[str]:
    """Every installed distribution ``distribution`` needs, transitively (extras excluded)."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        for requirement in metadata.requires(todo.pop()) or []:
            if "extra ==" in requirement.replace('extra=="', 'extra == "'):
                continue
            name = _name(requirement)
            if name not in seen:
                seen.add(name)
                try:
                    metadata.distribution(name)
                except metadata.PackageNotFoundError:
                    continue
                todo.append(name)
    return seen


def test_the_distribution_depends_on_pydantic_email_validator_and_cryptography_only() -> None:
    direct = {_name(r) for r in metadata.requires("signup-contracts") or []}
    assert direct == {"pydantic", "email-validator", "cryptography"}  # AES-GCM of sealed v3


def test_nothing_of_the_database_or_broker_stack_is_in_the_dependency_tree() -> None:
    tree = _dependency_tree("signup-contracts")
    assert "pydantic" in tree
    assert tree.isdisjoint(FORBIDDEN), tree & FORBIDDEN


def test_the_plugin_is_registered_for_pytest() -> None:
    points = metadata.entry_points(group="pytest11")
    assert "signup_contracts.pytest_plugin" in {p.value for p in points}


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("accounts.user_signed_up", "accounts.user_signed_up", True),
        ("accounts.*", "accounts.user_signed_up", True),
        ("*", "accounts.user_signed_up", False),
        ("#", "accounts.user_signed_up", True),
        ("#.user_signed_up", "accounts.user_signed_up", True),
        ("accounts.#", "accounts", True),
        ("accounts.*.x", "accounts.user_signed_up", False),
        ("provisioning.*", "accounts.user_signed_up", False),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c.y", False),
    ],
)
def test_topic_matching(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_routing_keys_name_the_producer_and_the_event() -> None:
    assert routing_key("accounts", "UserSignedUp") == "accounts.user_signed_up"
    assert published_routing_key(UserSignedUp) == "accounts.user_signed_up"
    assert published_routing_key(SpaceProvisioned) == "provisioning.space_provisioned"


def test_the_catalog_lists_every_published_version() -> None:
    assert list(registered_events()) == [
        ("SpaceProvisioned", 1),
        ("UserErased", 1),
        ("UserErasureRequested", 1),
        ("UserSignedUp", 1),
        ("UserSignedUp", 2),
        ("UserSignedUp", 3),
    ]


def test_a_type_and_version_cannot_be_registered_twice() -> None:
    class Impostor(UserSignedUp):
        pass

    with pytest.raises(ValueError, match="UserSignedUp v1 is registered twice"):
        register(Impostor)


def test_the_vocabulary() -> None:
    assert PLANS == ("free", "pro", "team")
    assert re.match(E164, "+14155550123")
    assert not re.match(E164, "0612345678")


def test_readers_ignore_fields_they_do_not_know() -> None:
    event = user_signed_up()
    body = event.to_json().replace(b'"plan":', b'"added_in_a_later_release":1,"plan":')
    assert Envelope[UserSignedUp].model_validate_json(body) == event


def test_a_message_of_another_type_is_refused_by_a_typed_reader() -> None:
    with pytest.raises(ValidationError):
        Envelope[SpaceProvisioned].model_validate_json(user_signed_up().to_json())
