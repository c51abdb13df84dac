"""Least privilege against the real servers: every refusal the issue names, and that each service
can still do all it needs (declare and consume its queues, publish retries, dead letters and its
own events).

The broker users are those of ``deploy/credentials/setup.py`` (the definitions ``make run``
applies), created under names of this test in a vhost of this test; the database roles and
databases likewise. Everything is removed afterwards.
"""

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import amqp
import httpx
import pytest
import sqlalchemy as sa
from kombu.connection import Connection
from sqlalchemy.engine import make_url

import accounts
from accounts.bootstrap import queues as accounts_queues
from accounts.settings import AccountsSettings
from audit.bootstrap import queues as audit_queues
from audit.settings import AuditSettings
from notifications.bootstrap import queues as notifications_queues
from notifications.settings import NotificationsSettings
from provisioning.bootstrap import queues as provisioning_queues
from provisioning.settings import ProvisioningSettings
from signup_contracts.amqp import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    HISTORY_STREAM,
    RETRY_EXCHANGE,
)
from signup_dlq.cli import main as signup_dlq
from signup_shared import migrations
from signup_shared.messaging import topology
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import amqp_url, postgres_server_url
from stats.bootstrap import queues as stats_queues
from stats.settings import StatsSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
OPERATOR = "signup-dlq"
JANITOR = "signup-dlq-janitor"  # drop-erased --all --every (the dlq-janitor role)
QUEUES: dict[str, list[ConsumerQueue]] = {
    "accounts": accounts_queues(AccountsSettings()),
    "notifications": notifications_queues(NotificationsSettings()),
    "provisioning": provisioning_queues(ProvisioningSettings()),
    "stats": stats_queues(StatsSettings()),
    "audit": audit_queues(AuditSettings()),
}
READER = "events-reader"
# The keys the consumer queues are bound to by default (UserSignedUp v2 has a key of its own).
SIGNED_UP, PROVISIONED = "accounts.user_signed_up.v2", "provisioning.space_provisioned"


def credentials_setup() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "credentials_setup", REPO / "deploy" / "credentials" / "setup.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def management(
    method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None
) -> httpx.Response:
    url = urllib.parse.urlsplit(MANAGEMENT)
    return httpx.request(
        method,
        f"{url.scheme}://{url.hostname}:{url.port}{path}",
        json=body,
        timeout=60,
        auth=auth or (url.username or "guest", url.password or "guest"),
    )


class Broker:
    """A vhost of this test with the platform's users (named ``<vhost>-<role>``)."""

    def __init__(self) -> None:
        self.vhost = f"lp{uuid.uuid4().hex[:10]}"
        self.logins = {
            role: (f"{self.vhost}-{role}", secrets.token_hex(12), self.vhost)
            for role in (*QUEUES, OPERATOR, JANITOR, READER)
        }
        admin = urllib.parse.urlsplit(amqp_url())
        self.host = f"{admin.hostname}:{admin.port or 5672}"

    def create(self) -> None:
        assert management("PUT", f"/api/vhosts/{self.vhost}").status_code in (201, 204)
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        response = management("PUT", f"/api/permissions/{self.vhost}/guest", everything)
        assert response.status_code in (201, 204)
        definitions = credentials_setup().broker_definitions(self.logins, self.vhost)
        response = management("POST", "/api/definitions", definitions)
        assert response.status_code in (200, 201, 204), response.text

    def remove(self) -> None:
        management("DELETE", f"/api/vhosts/{self.vhost}")
        for user, _, _ in self.logins.values():
            management("DELETE", f"/api/users/{user}")

    def url(self, role: str) -> str:
        user, password, vhost = self.logins[role]
        return f"amqp://{user}:{password}@{self.host}/{vhost}"

    def connect(self, role: str) -> amqp.Connection:
        user, password, vhost = self.logins[role]
        connection = amqp.Connection(
            self.host, userid=user, password=password, virtual_host=vhost, connect_timeout=5
        )
        connection.connect()
        return connection

    def depth(self, queue: str) -> int:
        connection = amqp.Connection(
            self.host, userid="guest", password="guest", virtual_host=self.vhost, connect_timeout=5
        )
        connection.connect()
        try:
            return int(connection.channel().queue_declare(queue, passive=True).message_count)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    broker = Broker()
    try:
        broker.create()
        yield broker
    finally:
        broker.remove()


def refused(operation: Any, *args: Any, **kwargs: Any) -> str:
    """Run a channel operation that the broker must refuse; the refusal's text."""
    with pytest.raises(amqp.exceptions.AccessRefused) as refusal:
        operation(*args, **kwargs)
    assert "ACCESS_REFUSED" in str(refusal.value)
    return str(refusal.value)


def event(routing_key: str) -> amqp.Message:
    return amqp.Message(
        b'{"forged": true}',
        content_type="application/json",
        delivery_mode=2,
        message_id=str(uuid.uuid4()),
    )


def publish(broker: Broker, role: str, exchange: str, routing_key: str) -> None:
    connection = broker.connect(role)
    try:
        channel = connection.channel()
        channel.confirm_select()
        channel.basic_publish_confirm(
            event(routing_key), exchange=exchange, routing_key=routing_key
        )
    finally:
        connection.collect()


# --- what each service needs keeps working ------------------------------------------------------
@pytest.mark.parametrize("service", sorted(QUEUES))
def test_a_service_declares_its_topology_and_consumes_its_own_queues(
    broker: Broker, service: str
) -> None:
    with Connection(broker.url(service)) as connection:
        topology.declare(connection, QUEUES[service])  # what `<service> topology` and start do
    connection = broker.connect(service)
    try:
        channel = connection.channel()
        for queue in QUEUES[service]:
            tag = channel.basic_consume(queue.name, callback=lambda _message: None)
            channel.basic_cancel(tag)
            assert channel.queue_declare(queue.dlq_name, passive=True).message_count == 0
    finally:
        connection.close()


@pytest.mark.parametrize("service", sorted(QUEUES))
def test_a_service_publishes_its_retries_and_dead_letters(broker: Broker, service: str) -> None:
    """The runtime's re-publishes: to events.retry (retry queue) and to events.dlx (DLQ), and
    a retry comes back to its queue after its delay, through events.retry."""
    queue = QUEUES[service][0]
    with Connection(broker.url(service)) as connection:
        topology.declare(connection, [queue])
    copies = [
        OutgoingMessage(
            body=b"{}",
            routing_key=target,
            message_id=str(uuid.uuid4()),
            type="user_signed_up",
            version=1,
            correlation_id="c",
            producer="accounts",
            exchange=exchange,
        )
        for exchange, target in (
            (RETRY_EXCHANGE, queue.retry_queue_name(1)),
            (DEAD_LETTER_EXCHANGE, queue.dlq_name),
        )
    ]
    publisher = ConfirmingPublisher(broker.url(service), confirm_timeout=10)
    try:
        before = broker.depth(queue.name), broker.depth(queue.dlq_name)
        publisher.publish_batch(copies)  # mandatory and confirmed: both were routed
    finally:
        publisher.close()
    assert broker.depth(queue.dlq_name) == before[1] + 1
    deadline = time.monotonic() + 15
    while broker.depth(queue.name) < before[0] + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert broker.depth(queue.name) == before[0] + 1  # back from its retry queue


@pytest.mark.parametrize(
    ("service", "routing_key"), [("accounts", SIGNED_UP), ("provisioning", PROVISIONED)]
)
def test_a_producer_publishes_its_own_events(
    broker: Broker, service: str, routing_key: str
) -> None:
    with Connection(broker.url("stats")) as connection:
        topology.declare(connection, QUEUES["stats"])
    subscriber = {SIGNED_UP: "stats.user_signed_up", PROVISIONED: "stats.space_provisioned"}
    before = broker.depth(subscriber[routing_key])
    publish(broker, service, EVENTS_EXCHANGE, routing_key)
    assert broker.depth(subscriber[routing_key]) == before + 1


# --- refusals ------------------------------------------------------------------------------------
# One case of each kind: every case of each, as RabbitMQ decides it from the generated
# definitions, is a unit test in test_credentials_defaults.py.
@pytest.mark.parametrize(
    ("role", "routing_key"),
    [
        ("stats", SIGNED_UP),  # no write on events at all
        ("provisioning", SIGNED_UP),  # write on events, refused by its topic permission
    ],
)
def test_publishing_a_foreign_routing_key_on_events_is_refused(
    broker: Broker, role: str, routing_key: str
) -> None:
    with Connection(broker.url("stats")) as connection:
        topology.declare(connection, QUEUES["stats"])
    subscriber = {SIGNED_UP: "stats.user_signed_up", PROVISIONED: "stats.space_provisioned"}
    before = broker.depth(subscriber[routing_key])
    refused(publish, broker, role, EVENTS_EXCHANGE, routing_key)
    assert broker.depth(subscriber[routing_key]) == before


def test_a_service_cannot_publish_into_a_queue_through_the_default_exchange(
    broker: Broker,
) -> None:
    """The default exchange reaches every queue by name and knows no topic permissions: no
    service may write to it (stats would otherwise activate subscriptions)."""
    with Connection(broker.url("accounts")) as connection:
        topology.declare(connection, QUEUES["accounts"])
    target = "accounts.space_provisioned"
    before = broker.depth(target)
    for role, routing_key in (
        ("stats", target),
        ("notifications", target),
        ("stats", "stats.user_signed_up"),
    ):  # not even into its own
        text = refused(publish, broker, role, "", routing_key)
        assert "amq.default" in text
    assert broker.depth(target) == before


@pytest.mark.parametrize(
    ("exchange", "target"),
    [
        (RETRY_EXCHANGE, "accounts.space_provisioned"),  # into the main queue
        (DEAD_LETTER_EXCHANGE, "accounts.space_provisioned.dlq"),
    ],
)
def test_a_service_cannot_publish_retries_or_dead_letters_for_another_service(
    broker: Broker, exchange: str, target: str
) -> None:
    with Connection(broker.url("accounts")) as connection:
        topology.declare(connection, QUEUES["accounts"])
    before = broker.depth(target)
    text = refused(publish, broker, "stats", exchange, target)
    assert "topic" in text  # stats may write to the exchange, not with that routing key
    assert broker.depth(target) == before


def test_a_service_cannot_consume_or_purge_another_services_queue(broker: Broker) -> None:
    with Connection(broker.url("notifications")) as connection:
        topology.declare(connection, QUEUES["notifications"])
    publish(broker, "accounts", EVENTS_EXCHANGE, SIGNED_UP)
    before = broker.depth("notifications.user_signed_up")
    assert before > 0
    for operation in ("basic_consume", "basic_get", "queue_purge", "queue_delete"):
        connection = broker.connect("provisioning")
        try:
            channel = connection.channel()
            refused(getattr(channel, operation), "notifications.user_signed_up")
        finally:
            connection.collect()
    assert broker.depth("notifications.user_signed_up") == before  # not taken, purged, deleted


@pytest.mark.parametrize("binding_key", ["#"])
def test_a_service_cannot_bind_its_queue_to_events_it_does_not_subscribe_to(
    broker: Broker, binding_key: str
) -> None:
    with Connection(broker.url("accounts")) as connection:
        topology.declare(connection, QUEUES["accounts"])
    connection = broker.connect("accounts")
    try:
        refused(
            connection.channel().queue_bind,
            "accounts.space_provisioned",
            EVENTS_EXCHANGE,
            binding_key,
        )
    finally:
        connection.collect()


def test_a_service_cannot_declare_a_queue_outside_its_own_names(broker: Broker) -> None:
    connection = broker.connect("stats")
    try:
        refused(connection.channel().queue_declare, "accounts.snoop", durable=True)
    finally:
        connection.collect()


# --- the event history ---------------------------------------------------------------------------
def read_history(broker: Broker, role: str) -> int | None:
    """Consume the stream as ``role`` from its first offset: the first offset delivered."""
    connection = broker.connect(role)
    try:
        channel = connection.channel()
        channel.basic_qos(0, 10, False)  # a stream refuses a consumer without a prefetch
        offsets: list[int] = []
        tag = channel.basic_consume(
            HISTORY_STREAM,
            callback=lambda message: offsets.append(message.headers["x-stream-offset"]),
            arguments={"x-stream-offset": "first"},
        )
        deadline = time.monotonic() + 5
        while not offsets and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.2)
        channel.basic_cancel(tag)
        return offsets[0] if offsets else None
    finally:
        connection.collect()


@pytest.mark.parametrize("role", [*sorted(QUEUES), READER])
def test_every_service_and_the_events_reader_read_the_history(broker: Broker, role: str) -> None:
    sealed = "accounts.user_signed_up.v3"  # kept by the stream's binding (v2 is not: clear data)
    publish(broker, "accounts", EVENTS_EXCHANGE, sealed)

    assert read_history(broker, role) == 0


@pytest.mark.parametrize("role", [*sorted(QUEUES), READER])
def test_nobody_writes_binds_declares_or_deletes_the_history(broker: Broker, role: str) -> None:
    for operation, args in (
        ("basic_publish", (event(SIGNED_UP), "", HISTORY_STREAM)),  # the default exchange
        ("queue_bind", (HISTORY_STREAM, EVENTS_EXCHANGE, SIGNED_UP)),
        ("queue_unbind", (HISTORY_STREAM, EVENTS_EXCHANGE, "#")),
        ("queue_delete", (HISTORY_STREAM,)),
    ):
        connection = broker.connect(role)
        try:
            channel = connection.channel()
            channel.confirm_select()
            operate = channel.basic_publish_confirm if operation == "basic_publish" else None
            refused(operate or getattr(channel, operation), *args)
        finally:
            connection.collect()
    connection = broker.connect(role)
    try:
        refused(
            connection.channel().queue_declare,
            HISTORY_STREAM,
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "stream"},
        )
    finally:
        connection.collect()


def test_the_events_reader_reads_nothing_else_and_publishes_nothing(broker: Broker) -> None:
    with Connection(broker.url("stats")) as connection:
        topology.declare(connection, QUEUES["stats"])
    for operation, args in (
        ("basic_consume", ("stats.user_signed_up",)),
        ("basic_get", ("stats.user_signed_up.dlq",)),
        ("queue_declare", ("events-reader.mine",)),
    ):
        connection = broker.connect(READER)
        try:
            refused(getattr(connection.channel(), operation), *args)
        finally:
            connection.collect()
    refused(publish, broker, READER, EVENTS_EXCHANGE, SIGNED_UP)


def test_the_operator_reads_and_replays_dead_letters_and_nothing_else(broker: Broker) -> None:
    queue = QUEUES["notifications"][0]
    with Connection(broker.url("notifications")) as connection:
        topology.declare(connection, [queue])
    main_before, dead_before = broker.depth(queue.name), broker.depth(queue.dlq_name)
    publish(broker, "notifications", DEAD_LETTER_EXCHANGE, queue.dlq_name)
    connection = broker.connect(OPERATOR)
    try:
        channel = connection.channel()
        message = channel.basic_get(queue.dlq_name, no_ack=False)
        assert message is not None
        channel.confirm_select()
        channel.basic_publish_confirm(message, exchange="", routing_key=queue.name, mandatory=True)
        channel.basic_ack(message.delivery_tag)
    finally:
        connection.close()
    assert (broker.depth(queue.name), broker.depth(queue.dlq_name)) == (
        main_before + 1,
        dead_before,
    )
    for operation, args in (("basic_get", (queue.name,)), ("queue_declare", ("mine.dlq",))):
        connection = broker.connect(OPERATOR)
        try:
            refused(getattr(connection.channel(), operation), *args)
        finally:
            connection.collect()
    user, password, _ = broker.logins[OPERATOR]
    listed = management("GET", f"/api/queues/{broker.vhost}?columns=name", auth=(user, password))
    assert listed.status_code == 200
    assert queue.dlq_name in {row["name"] for row in listed.json()}
    assert management("GET", "/api/users", auth=(user, password)).status_code in (401, 403)


def test_the_signup_dlq_tool_lists_replays_and_purges_as_the_operator(broker: Broker) -> None:
    queue = QUEUES["provisioning"][0]
    with Connection(broker.url("provisioning")) as connection:
        topology.declare(connection, [queue])
    for _ in range(3):
        publish(broker, "provisioning", DEAD_LETTER_EXCHANGE, queue.dlq_name)
    before = broker.depth(queue.name)
    user, password, _ = broker.logins[OPERATOR]
    management_url = urllib.parse.urlsplit(MANAGEMENT)
    urls = [
        "--amqp-url",
        broker.url(OPERATOR),
        "--management-url",
        f"http://{user}:{password}@{management_url.hostname}:{management_url.port}",
    ]
    assert signup_dlq(["list", *urls]) == 0
    assert signup_dlq(["replay", queue.dlq_name, "--limit", "2", "--yes", *urls]) == 0
    assert broker.depth(queue.name) == before + 2
    assert signup_dlq(["purge", queue.dlq_name, "--yes", *urls]) == 0
    assert broker.depth(queue.dlq_name) == 0


def test_the_dlq_janitor_takes_and_puts_back_dead_letters_and_nothing_else(broker: Broker) -> None:
    """What drop-erased needs (take a dead letter, publish a kept one back to its DLQ through the
    default exchange, list the DLQs) and the refusals: no service queue consumed, nothing
    published to ``events``, nothing declared, no user administration."""
    queue = QUEUES["stats"][0]
    with Connection(broker.url("stats")) as connection:
        topology.declare(connection, [queue])
    publish(broker, "stats", DEAD_LETTER_EXCHANGE, queue.dlq_name)
    before = broker.depth(queue.dlq_name)
    connection = broker.connect(JANITOR)
    try:
        channel = connection.channel()
        message = channel.basic_get(queue.dlq_name, no_ack=False)
        assert message is not None
        channel.confirm_select()
        channel.basic_publish_confirm(
            message, exchange="", routing_key=queue.dlq_name, mandatory=True
        )
        channel.basic_ack(message.delivery_tag)
    finally:
        connection.close()
    assert broker.depth(queue.dlq_name) == before  # kept: back in its DLQ
    for operation, args in (
        ("basic_get", (queue.name,)),
        ("basic_consume", (queue.name,)),
        ("queue_declare", ("signup-dlq-janitor.mine.dlq",)),
    ):
        connection = broker.connect(JANITOR)
        try:
            refused(getattr(connection.channel(), operation), *args)
        finally:
            connection.collect()
    refused(publish, broker, JANITOR, EVENTS_EXCHANGE, SIGNED_UP)
    refused(publish, broker, JANITOR, DEAD_LETTER_EXCHANGE, queue.dlq_name)
    user, password, _ = broker.logins[JANITOR]
    listed = management("GET", f"/api/queues/{broker.vhost}?columns=name", auth=(user, password))
    assert listed.status_code == 200
    assert queue.dlq_name in {row["name"] for row in listed.json()}
    assert management("GET", "/api/users", auth=(user, password)).status_code in (401, 403)


# --- PostgreSQL -----------------------------------------------------------------------------------
class Databases:
    def __init__(self) -> None:
        self.prefix = f"lp{uuid.uuid4().hex[:10]}"
        self.admin = f"{postgres_server_url()}/postgres"
        self.passwords = {service: secrets.token_hex(12) for service in ("accounts", "stats")}

    def url(self, role: str, database: str | None = None) -> str:
        name = f"{self.prefix}_{role}"
        url = make_url(postgres_server_url()).set(
            username=name,
            password=self.passwords[role],
            database=f"{self.prefix}_{database or role}",
        )
        return url.render_as_string(hide_password=False)

    def remove(self) -> None:
        engine = sa.create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for role in self.passwords:
                name = f"{self.prefix}_{role}"
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        engine.dispose()


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    databases = Databases()
    try:
        for role in databases.passwords:
            assert migrations.ensure_role_and_database(databases.admin, databases.url(role))
        yield databases
    finally:
        databases.remove()


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text(sql), params)
    finally:
        engine.dispose()


def test_the_stats_role_cannot_connect_to_the_accounts_database(databases: Databases) -> None:
    assert scalar(databases.url("stats"), "SELECT current_user") == f"{databases.prefix}_stats"
    with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
        scalar(databases.url("stats", database="accounts"), "SELECT 1")


def test_a_role_owns_its_database_with_no_more_than_login(databases: Databases) -> None:
    role, database = f"{databases.prefix}_accounts", f"{databases.prefix}_accounts"
    attributes = scalar(
        databases.admin,
        "SELECT (rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin)"
        "::text FROM pg_roles WHERE rolname = :role",
        role=role,
    )
    assert attributes == "(f,f,f,f,f,t)"
    assert (
        scalar(
            databases.admin,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :db",
            db=database,
        )
        == role
    )
    assert (
        scalar(
            databases.admin,
            "SELECT has_database_privilege(:other, :db, 'CONNECT')",
            other=f"{databases.prefix}_stats",
            db=database,
        )
        is False
    )


def test_a_service_role_migrates_its_own_database(databases: Databases) -> None:
    migrations.upgrade(databases.url("accounts"), Path(accounts.__file__).parent / "migrations")
    assert scalar(databases.url("accounts"), "SELECT count(*) FROM outbox") == 0


def test_a_service_role_may_not_create_databases(databases: Databases) -> None:
    with pytest.raises(migrations.SetupError, match="may not create it"):
        migrations.ensure_database(databases.url("stats", database="nope"))


def test_setup_hands_an_existing_database_and_its_tables_to_the_role() -> None:
    databases = Databases()
    name = f"{databases.prefix}_stats"
    engine = sa.create_engine(databases.admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        scalar_admin = make_url(databases.admin).set(database=name)
        table = sa.create_engine(scalar_admin, isolation_level="AUTOCOMMIT")
        with table.connect() as connection:
            connection.execute(sa.text("CREATE TABLE old (id bigint GENERATED ALWAYS AS IDENTITY)"))
        table.dispose()
        assert migrations.ensure_role_and_database(databases.admin, databases.url("stats")) is False
        assert scalar(databases.url("stats"), "INSERT INTO old DEFAULT VALUES RETURNING id") == 1
        with pytest.raises(migrations.SetupError, match="superuser"):
            migrations.ensure_role_and_database(databases.admin, databases.admin)
    finally:
        engine.dispose()
        databases.remove()


# --- the setup step of `make run`, on a fresh vhost and fresh databases ---------------------------
def test_the_setup_script_creates_everything_and_the_services_then_migrate_and_declare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``deploy/credentials/setup.py``'s ``main`` as ``make run`` runs it (twice: idempotent),
    then the real ``stats migrate`` and ``stats topology`` as the stats role and user."""
    prefix = f"lp{uuid.uuid4().hex[:10]}"
    admin = urllib.parse.urlsplit(amqp_url())
    host = f"{admin.hostname}:{admin.port or 5672}"
    passwords = {role: secrets.token_hex(12) for role in (*QUEUES, OPERATOR, JANITOR, READER)}
    services = tuple(f"{service.upper()}_" for service in QUEUES)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith((*services, "SIGNUP_DLQ_", "EVENTS_READER_", "AMQP_URL"))
    }
    for role, password in passwords.items():
        prefix_env = {
            OPERATOR: "SIGNUP_DLQ",
            JANITOR: "SIGNUP_DLQ_JANITOR",
            READER: "EVENTS_READER",
        }.get(role, role.upper())
        env[f"{prefix_env}_AMQP_URL"] = f"amqp://{prefix}-{role}:{password}@{host}/{prefix}"
        if role not in (OPERATOR, JANITOR, READER):
            env[f"{prefix_env}_DATABASE_URL"] = (
                make_url(postgres_server_url())
                .set(username=f"{prefix}_{role}", password=password, database=f"{prefix}_{role}")
                .render_as_string(hide_password=False)
            )
    env["POSTGRES_ADMIN_URL"] = f"{postgres_server_url()}/postgres"
    env["RABBITMQ_MANAGEMENT_URL"] = MANAGEMENT
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    setup = credentials_setup()
    stats = str(Path(sys.executable).with_name("stats"))
    try:
        assert setup.main() == 0
        assert setup.main() == 0
        for command in ("migrate", "topology"):
            done = subprocess.run(
                [stats, command], env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stdout + done.stderr
        users = {row["name"]: row for row in management("GET", "/api/users").json()}
        assert {f"{prefix}-{role}" for role in passwords} <= set(users)
        queues = management("GET", f"/api/queues/{prefix}?columns=name").json()
        assert "stats.user_signed_up.retry.1s" in {row["name"] for row in queues}
        assert HISTORY_STREAM in {row["name"] for row in queues}
        assert scalar(env["STATS_DATABASE_URL"], "SELECT count(*) FROM inbox") == 0
        with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
            foreign = make_url(env["STATS_DATABASE_URL"]).set(database=f"{prefix}_accounts")
            scalar(foreign.render_as_string(hide_password=False), "SELECT 1")
        monkeypatch.setenv("STATS_AMQP_URL", f"amqp://guest:guest@{host}/{prefix}")
        assert setup.main() == 1
    finally:
        management("DELETE", f"/api/vhosts/{prefix}")
        for role in passwords:
            management("DELETE", f"/api/users/{prefix}-{role}")
        engine = sa.create_engine(f"{postgres_server_url()}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for name in (f"{prefix}_{role}" for role in QUEUES):
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        engine.dispose()


def test_role_passwords_reach_the_server_only_as_scram_verifiers(databases: Databases) -> None:
    """The server kept the verifier we computed: it was never given the password in clear."""
    stored = scalar(
        databases.admin,
        "SELECT rolpassword FROM pg_authid WHERE rolname = :role",
        role=f"{databases.prefix}_accounts",
    )
    assert scram_verifies(stored, databases.passwords["accounts"]), stored


def scram_verifies(stored: str, password: str) -> bool:
    """Whether a ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` verifier is the
    one of ``password`` (RFC 5802 / RFC 7677; a hex password needs no SASLprep)."""
    mechanism, parameters, keys = stored.split("$")
    iterations, salt = parameters.split(":")
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return (
        mechanism == "SCRAM-SHA-256"
        and hashlib.sha256(client_key).digest() == stored_key
        and hmac.new(salted, b"Server Key", hashlib.sha256).digest() == server_key
    )


def test_the_setup_migrates_a_broker_of_the_previous_version() -> None:
    """events.dlx was direct and retry queues dead-lettered through the default exchange: the
    setup re-creates the exchange with every DLQ's binding, re-declares an empty retry queue
    and refuses while one still holds messages."""
    broker = Broker()
    setup = credentials_setup()
    queue = QUEUES["stats"][0]
    busy, idle = queue.retry_queue_name(2), queue.retry_queue_name(1)
    try:
        assert management("PUT", f"/api/vhosts/{broker.vhost}").status_code in (201, 204)
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        management("PUT", f"/api/permissions/{broker.vhost}/guest", everything)
        connection = amqp.Connection(
            broker.host,
            userid="guest",
            password="guest",
            virtual_host=broker.vhost,
            connect_timeout=5,
        )
        connection.connect()
        try:
            channel = connection.channel()
            channel.exchange_declare("events.dlx", "direct", durable=True, auto_delete=False)
            for name in (busy, idle):
                channel.queue_declare(
                    name,
                    durable=True,
                    auto_delete=False,
                    arguments={
                        "x-message-ttl": 60_000,
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": queue.name,
                    },
                )
            channel.basic_publish(event(busy), exchange="", routing_key=busy)
        finally:
            connection.close()
        definitions = setup.broker_definitions(broker.logins, broker.vhost)
        admin = setup.Management(MANAGEMENT)
        with pytest.raises(setup.CredentialsError, match=re.escape(busy)):
            admin.apply(definitions)  # the broker itself refuses to delete it: not empty
        assert broker.depth(busy) == 1
        assert (
            management("DELETE", f"/api/queues/{broker.vhost}/{busy}/contents").status_code == 204
        )
        admin.apply(definitions)
        exchange = management("GET", f"/api/exchanges/{broker.vhost}/events.dlx").json()
        assert exchange["type"] == "topic"
        queues = {
            q["name"]: q["arguments"]
            for q in management("GET", f"/api/queues/{broker.vhost}?columns=name,arguments").json()
        }
        assert queues[busy]["x-dead-letter-exchange"] == "events.retry"
        assert queues[idle]["x-dead-letter-exchange"] == "events.retry"
        bound = {
            b["destination"]
            for b in management(
                "GET", f"/api/exchanges/{broker.vhost}/events.dlx/bindings/source"
            ).json()
        }
        assert {q.dlq_name for queues_ in QUEUES.values() for q in queues_} <= bound
    finally:
        broker.remove()
