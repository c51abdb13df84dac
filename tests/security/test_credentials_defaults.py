"""Least privilege, without servers: who the services are by default, and what the generated
definitions allow (the regexes are the ones RabbitMQ evaluates; these names use no syntax where
Python's ``re`` and RabbitMQ's PCRE differ)."""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from accounts.settings import AccountsSettings
from audit.settings import AuditSettings
from notifications.settings import NotificationsSettings
from provisioning.settings import ProvisioningSettings
from signup_dlq.config import DEFAULT_AMQP_URL, DEFAULT_MANAGEMENT_URL, resolve_amqp_url
from signup_shared.settings import ServiceSettings
from stats.settings import StatsSettings

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "accounts": AccountsSettings,
    "notifications": NotificationsSettings,
    "provisioning": ProvisioningSettings,
    "stats": StatsSettings,
    "audit": AuditSettings,
}
ADMINISTRATORS = {"guest", "postgres", "root", "admin"}


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return load(REPO / "deploy" / "rabbitmq" / "generate.py", "rabbitmq_definitions")


@pytest.fixture(scope="module")
def setup() -> ModuleType:
    return load(REPO / "deploy" / "credentials" / "setup.py", "credentials_setup")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in SETTINGS:
        for field in ("AMQP_URL", "DATABASE_URL"):
            monkeypatch.delenv(f"{service.upper()}_{field}", raising=False)
    for name in (
        "AMQP_URL",
        "SIGNUP_DLQ_AMQP_URL",
        "SIGNUP_DLQ_MANAGEMENT_URL",
        "RABBITMQ_MANAGEMENT_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_env")
def test_every_service_defaults_to_a_broker_user_and_database_role_of_its_own() -> None:
    brokers = {name: urlsplit(cls().amqp_url).username for name, cls in SETTINGS.items()}
    roles = {name: make_url(cls().database_url).username for name, cls in SETTINGS.items()}
    assert brokers == {name: name for name in SETTINGS}
    assert roles == {name: name for name in SETTINGS}
    assert {make_url(cls().database_url).database for cls in SETTINGS.values()} == set(SETTINGS)


@pytest.mark.usefixtures("clean_env")
def test_the_dead_letter_tool_defaults_to_the_operator_user() -> None:
    assert urlsplit(DEFAULT_AMQP_URL).username == "signup-dlq"
    assert urlsplit(DEFAULT_MANAGEMENT_URL).username == "signup-dlq"
    assert resolve_amqp_url(None, {"SIGNUP_DLQ_AMQP_URL": "amqp://op", "AMQP_URL": "x"}) == (
        "amqp://op"
    )


def test_no_settings_default_names_an_administrator() -> None:
    sources = [
        REPO / "tools" / "dlq" / "src" / "signup_dlq" / "config.py",
        *(REPO / "services").glob("*/src/*/settings.py"),
    ]
    assert len(sources) == 6
    for source in sources:
        text = source.read_text()
        assert "guest" not in text.replace("``guest``", ""), source
        assert "postgres@" not in text, source


@pytest.mark.usefixtures("clean_env")
def test_a_service_given_its_own_url_keeps_it_over_the_shared_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://shared@broker//")
    monkeypatch.setenv("STATS_AMQP_URL", "amqp://stats-prod:s3cret@broker//")
    assert StatsSettings().amqp_url == "amqp://stats-prod:s3cret@broker//"
    assert AccountsSettings().amqp_url == "amqp://shared@broker//"


def test_the_committed_definitions_hold_users_permissions_and_topic_permissions() -> None:
    definitions = json.loads((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())
    users = {user["name"]: user for user in definitions["users"]}
    assert set(users) == {*SETTINGS, "signup-dlq", "signup-dlq-janitor", "events-reader", "keda"}
    assert all("administrator" not in user["tags"] for user in users.values())
    assert users["signup-dlq"]["tags"] == users["signup-dlq-janitor"]["tags"] == ["management"]
    assert users["keda"]["tags"] == ["monitoring"]  # KEDA reads queue depths, nothing else
    assert users["events-reader"]["tags"] == []  # consumes the history, no management API
    assert {p["user"] for p in definitions["permissions"]} == set(users)
    assert {(t["user"], t["exchange"]) for t in definitions["topic_permissions"]} == {
        (user, exchange) for user in users for exchange in ("events", "events.dlx", "events.retry")
    }
    keda = [p for p in definitions["permissions"] if p["user"] == "keda"]
    assert [(p["configure"], p["write"], p["read"]) for p in keda] == [("^$", "^$", "^$")]


def grants(generate: ModuleType) -> dict[str, Any]:
    return {grant.user: grant for grant in generate.access()}


def allowed(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def test_each_service_configures_and_reads_only_its_own_queues(generate: ModuleType) -> None:
    access = grants(generate)
    own = {
        "accounts": "accounts.space_provisioned",
        "notifications": "notifications.user_signed_up",
        "provisioning": "provisioning.user_signed_up",
        "stats": "stats.user_signed_up",
        "audit": "audit.user_signed_up",
    }
    for service, grant in access.items():
        if service in ("signup-dlq", "signup-dlq-janitor", "events-reader"):
            continue
        for other, queue in own.items():
            for name in (queue, f"{queue}.dlq", f"{queue}.retry.1s"):
                expected = other == service
                assert allowed(grant.configure, name) is expected, (service, name)
                assert allowed(grant.read, name) is expected, (service, name)
        for exchange in ("events", "events.dlx", "events.retry", "events.unrouted"):
            assert allowed(grant.configure, exchange) and allowed(grant.read, exchange)
        assert allowed(grant.write, "events.retry") and allowed(grant.write, "events.dlx")
        assert not allowed(grant.write, "amq.default")  # it reaches every queue by name
        assert not allowed(grant.configure, "amq.default")


def test_retries_and_dead_letters_are_limited_to_the_services_own_queues(
    generate: ModuleType,
) -> None:
    access = grants(generate)
    topic = {
        (p["user"], p["exchange"]): p
        for g in access.values()
        for p in generate.grants.topic_permissions(g, "/")
    }
    targets = (
        "stats.user_signed_up",
        "stats.user_signed_up.retry.1s",
        "stats.user_signed_up.dlq",
        "accounts.space_provisioned",
        "accounts.space_provisioned.retry.1s",
        "accounts.space_provisioned.dlq",
    )
    for exchange in ("events.retry", "events.dlx"):
        assert {t for t in targets if allowed(topic["stats", exchange]["write"], t)} == set(
            targets[:3]
        )
        for tool in ("signup-dlq", "signup-dlq-janitor"):
            assert not any(allowed(topic[tool, exchange]["write"], t) for t in targets)
        assert {user for user, _ in topic} == set(access)  # none without: all keys allowed


def test_only_producers_may_publish_on_events_and_only_their_own_keys(
    generate: ModuleType,
) -> None:
    access = grants(generate)
    keys = ("accounts.user_signed_up", "provisioning.space_provisioned")
    published = {
        user: {key for key in keys if allowed(g.write, "events") and allowed(g.topic_write, key)}
        for user, g in access.items()
    }
    assert published == {
        "accounts": {"accounts.user_signed_up"},
        "provisioning": {"provisioning.space_provisioned"},
        "notifications": set(),
        "stats": set(),
        "audit": set(),
        "signup-dlq": set(),
        "signup-dlq-janitor": set(),
        "events-reader": set(),
    }
    bound = {
        user: {key for key in keys if allowed(g.topic_read, key)} for user, g in access.items()
    }
    assert bound["notifications"] == {"accounts.user_signed_up"}
    assert bound["accounts"] == {"provisioning.space_provisioned"}
    assert bound["signup-dlq"] == bound["signup-dlq-janitor"] == bound["events-reader"] == set()
    assert not allowed(access["stats"].topic_read, "#")


@pytest.mark.parametrize("user", ["signup-dlq", "signup-dlq-janitor"])
def test_the_operator_reads_dead_letters_and_replays_through_the_default_exchange_only(
    generate: ModuleType, user: str
) -> None:
    """The operator, and the dlq janitor with the same grants (drop-erased puts a kept dead
    letter back through the default exchange: RabbitMQ cannot narrow that to the DLQs)."""
    operator = grants(generate)[user]
    assert allowed(operator.read, "notifications.user_signed_up.dlq")
    assert not allowed(operator.read, "notifications.user_signed_up")
    assert not allowed(operator.read, "events")
    assert operator.write == r"^amq\.default$"
    assert not any(
        allowed(operator.configure, name)
        for name in ("notifications.user_signed_up.dlq", "events", "amq.default")
    )


def test_setup_refuses_to_hand_a_service_the_administrator_or_a_shared_user(
    setup: ModuleType,
) -> None:
    logins = {name: (name, "pw", "/") for name in (*SETTINGS, "signup-dlq")}
    assert setup.check_logins(logins, "guest") == "/"
    with pytest.raises(setup.CredentialsError, match="guest"):
        setup.check_logins({**logins, "stats": ("guest", "guest", "/")}, "guest")
    with pytest.raises(setup.CredentialsError, match="shared"):
        setup.check_logins({**logins, "stats": ("accounts", "pw", "/")}, "guest")
    with pytest.raises(setup.CredentialsError, match="vhosts"):
        setup.check_logins({**logins, "stats": ("stats", "pw", "other")}, "guest")
    with pytest.raises(setup.CredentialsError, match="ops"):
        setup.check_logins({**logins, "stats": ("ops", "pw", "/")}, "ops")


# The refusals test_least_privilege.py sees from the broker (it keeps one case of each kind, for
# the wiring), case by case as RabbitMQ decides them from these definitions: a publish on a topic
# exchange needs write on the exchange and the topic permission's write on the routing key; a
# binding needs the topic permission's read on the binding key.
SIGNED_UP, PROVISIONED = "accounts.user_signed_up", "provisioning.space_provisioned"


@pytest.mark.parametrize(
    ("user", "routing_key"),
    [
        ("stats", SIGNED_UP),  # no write on events at all
        ("stats", PROVISIONED),
        ("notifications", SIGNED_UP),
        ("provisioning", SIGNED_UP),  # write on events, refused by its topic permission
        ("accounts", PROVISIONED),
        ("signup-dlq", SIGNED_UP),
    ],
)
def test_publishing_a_foreign_routing_key_on_events_is_refused(
    generate: ModuleType, user: str, routing_key: str
) -> None:
    grant = grants(generate)[user]
    assert not (allowed(grant.write, "events") and allowed(grant.topic_write, routing_key))


@pytest.mark.parametrize(
    ("exchange", "target"),
    [
        ("events.retry", "accounts.space_provisioned"),  # into the main queue
        ("events.retry", "accounts.space_provisioned.retry.1s"),
        ("events.dlx", "accounts.space_provisioned.dlq"),
        ("events.dlx", "accounts.space_provisioned"),
    ],
)
def test_a_service_may_write_retries_and_dead_letters_only_for_its_own_queues(
    generate: ModuleType, exchange: str, target: str
) -> None:
    grant = grants(generate)["stats"]
    topic = {p["exchange"]: p for p in generate.grants.topic_permissions(grant, "/")}
    assert allowed(grant.write, exchange)  # the exchange, yes; that routing key, no
    assert not allowed(topic[exchange]["write"], target)
    assert allowed(topic[exchange]["write"], target.replace("accounts.space", "stats.user_signed"))


@pytest.mark.parametrize(
    "binding_key", [SIGNED_UP, "#", "accounts.*", "*.*", "provisioning.#", "provisioning.*"]
)
def test_a_service_binds_only_to_the_events_it_subscribes_to(
    generate: ModuleType, binding_key: str
) -> None:
    grant = grants(generate)["accounts"]
    assert not allowed(grant.topic_read, binding_key)
    assert allowed(grant.topic_read, PROVISIONED)
