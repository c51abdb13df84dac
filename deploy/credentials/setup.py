"""Least privilege, applied: one broker user and one database role per service, an operator user
for the dead-letter tool, idempotently (``make run`` runs it before the migrations).

Runs as the servers' administrators:

- RabbitMQ: ``RABBITMQ_MANAGEMENT_URL`` (default: ``guest`` on 127.0.0.1, RabbitMQ's own
  bootstrap administrator, which RabbitMQ lets log in from loopback only). Posts the definitions
  of ``deploy/rabbitmq/generate.py`` (topology; users, permissions, topic permissions from
  ``deploy/rabbitmq/grants.py``) to
  ``/api/definitions``.
  The history stream's retention comes from ``EVENTS_HISTORY_*`` (``HistorySettings``) when
  the stream is created; an existing stream keeps its arguments (change them with a policy).
- PostgreSQL: ``POSTGRES_ADMIN_URL`` (default: the local superuser ``postgres``). Creates each
  service's login role (no superuser, no createdb) and its database, owned by the role, with
  CONNECT revoked from PUBLIC.

Who and which password: each service's own settings (``<SERVICE>_AMQP_URL``,
``<SERVICE>_DATABASE_URL``), the operator's ``SIGNUP_DLQ_AMQP_URL``, the dlq janitor's
``SIGNUP_DLQ_JANITOR_AMQP_URL``, the history reader's ``EVENTS_READER_AMQP_URL``; without them
the local development defaults (``local-dev-<user>``), which only ``make run`` on a developer
machine uses.
No service connects as an administrator, so the setup refuses to hand a service ``guest``, the
administrator's own user, a shared user or a superuser role.

    .venv/bin/python deploy/credentials/setup.py
"""

import importlib.util
import os
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from accounts.settings import AccountsSettings
from audit.settings import AuditSettings
from notifications.settings import NotificationsSettings
from provisioning.settings import ProvisioningSettings
from signup_contracts.amqp import EVENTS_EXCHANGE, HISTORY_STREAM
from signup_dlq.config import DEFAULT_AMQP_URL as OPERATOR_DEFAULT_AMQP_URL
from signup_dlq.config import JANITOR_USER, OPERATOR_AMQP_URL_ENV, OPERATOR_USER
from signup_shared import migrations
from signup_shared.messaging.history_stream import RETIRED_KEYS
from signup_shared.settings import LOCAL_POSTGRES_URL, ServiceSettings, local_amqp_url
from stats.settings import StatsSettings

GENERATOR = Path(__file__).resolve().parents[1] / "rabbitmq" / "generate.py"
MANAGEMENT_URL_ENV = "RABBITMQ_MANAGEMENT_URL"
POSTGRES_ADMIN_URL_ENV = "POSTGRES_ADMIN_URL"
LOCAL_MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"
ADMINISTRATORS = frozenset({"guest", "postgres"})
RETRY_QUEUE_MARK = ".retry."
READER_USER = "events-reader"
READER_AMQP_URL_ENV = "EVENTS_READER_AMQP_URL"
JANITOR_AMQP_URL_ENV = "SIGNUP_DLQ_JANITOR_AMQP_URL"


class CredentialsError(Exception):
    """The setup cannot be applied as configured (the message says what to change)."""


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rabbitmq_definitions", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def service_settings() -> dict[str, ServiceSettings]:
    return {
        "accounts": AccountsSettings(),
        "notifications": NotificationsSettings(),
        "provisioning": ProvisioningSettings(),
        "stats": StatsSettings(),
        "audit": AuditSettings(),
    }


def amqp_login(url: str) -> tuple[str, str, str]:
    """User, password and vhost of an AMQP URL (``//`` and ``/%2F`` both mean ``/``)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return (
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
        urllib.parse.unquote(path) or "/",
    )


def broker_logins(env: Mapping[str, str]) -> dict[str, tuple[str, str, str]]:
    """``{service, "signup-dlq", "signup-dlq-janitor" or "events-reader": (user, password,
    vhost)}``."""
    logins = {name: amqp_login(s.amqp_url) for name, s in service_settings().items()}
    logins[OPERATOR_USER] = amqp_login(env.get(OPERATOR_AMQP_URL_ENV) or OPERATOR_DEFAULT_AMQP_URL)
    logins[JANITOR_USER] = amqp_login(env.get(JANITOR_AMQP_URL_ENV) or local_amqp_url(JANITOR_USER))
    logins[READER_USER] = amqp_login(env.get(READER_AMQP_URL_ENV) or local_amqp_url(READER_USER))
    return logins


def check_logins(logins: Mapping[str, tuple[str, str, str]], admin_user: str) -> str:
    """The one vhost of every login; refuses administrators, shared and missing users."""
    users = [user for user, _, _ in logins.values()]
    for name, (user, _, _) in logins.items():
        if not user or user in ADMINISTRATORS | {admin_user}:
            raise CredentialsError(
                f"{name} would connect to RabbitMQ as {user or 'nobody'!r}: give it a user of "
                f"its own ({name.upper().replace('-', '_')}_AMQP_URL; AMQP_URL sets every service)"
            )
        if users.count(user) > 1:
            raise CredentialsError(f"broker user {user!r} is shared: one user per service")
    vhosts = {vhost for _, _, vhost in logins.values()}
    if len(vhosts) != 1:
        raise CredentialsError(f"the services point at different vhosts: {sorted(vhosts)}")
    return vhosts.pop()


def broker_definitions(
    logins: Mapping[str, tuple[str, str, str]], vhost: str, *, topology: bool = True
) -> dict[str, Any]:
    """Users (fresh salts), permissions, topic permissions (and the topology) for ``vhost``."""
    generate = generator()
    grants = generate.access({name: user for name, (user, _, _) in logins.items()})
    passwords = {user: password for user, password, _ in logins.values()}
    definitions: dict[str, Any] = generate.grants.access_definitions(grants, passwords, vhost)
    if topology:
        for key, items in generate.topology_definitions().items():
            definitions[key] = [
                {**item, "name": vhost} if key == "vhosts" else {**item, "vhost": vhost}
                for item in items
            ]
    return definitions


class Management:
    """The RabbitMQ management HTTP API, as an administrator."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        self.user = urllib.parse.unquote(parts.username or "guest")
        self.auth = (self.user, urllib.parse.unquote(parts.password or "guest"))

    def request(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)
    ) -> Any:
        try:
            response = httpx.request(
                method, self.base + path, json=body, auth=self.auth, timeout=60
            )
        except httpx.HTTPError as exc:
            raise CredentialsError(f"RabbitMQ management API at {self.base}: {exc}") from exc
        if response.status_code not in expect:
            raise CredentialsError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def apply(self, definitions: Mapping[str, Any]) -> None:
        for vhost in definitions.get("vhosts", []):
            self.request("PUT", f"/api/vhosts/{quote(vhost['name'])}", {})
        self.migrate(definitions)
        self.request("POST", "/api/definitions", dict(definitions))
        self.unbind_retired(definitions)

    def unbind_retired(self, definitions: Mapping[str, Any]) -> None:
        """Remove the history stream's bindings of earlier versions (``#`` kept personal data in
        clear), once the import has created its bindings of today: no event is missed."""
        for wanted in definitions.get("queues", []):
            if wanted["name"] != HISTORY_STREAM:
                continue
            for key in RETIRED_KEYS:
                path = (
                    f"/api/bindings/{quote(wanted['vhost'])}/e/{quote(EVENTS_EXCHANGE)}"
                    f"/q/{quote(HISTORY_STREAM)}/{quote(key)}"
                )
                self.request("DELETE", path, expect=(204, 404))

    def migrate(self, definitions: Mapping[str, Any]) -> None:
        """Make room for what changed since an older version declared it.

        Importing definitions keeps an existing exchange or queue as it is, whatever its type or
        arguments. An exchange of another type (``events.dlx`` was direct) is deleted (its
        bindings, every service's, come back with the import); a retry queue of other arguments
        (they dead-lettered through the default exchange) is deleted if empty, refused if not.
        """
        for wanted in definitions.get("exchanges", []):
            path = f"/api/exchanges/{quote(wanted['vhost'])}/{quote(wanted['name'])}"
            found = self.lookup(path)
            if found is not None and found.get("type") != wanted["type"]:
                self.request("DELETE", path, expect=(204, 404))
        for wanted in definitions.get("queues", []):
            if RETRY_QUEUE_MARK not in wanted["name"]:
                continue
            path = f"/api/queues/{quote(wanted['vhost'])}/{quote(wanted['name'])}"
            found = self.lookup(path)
            if found is None or found.get("arguments") == wanted["arguments"]:
                continue
            # The broker decides emptiness at the moment of deletion (`if-empty`): the message
            # count the management API shows lags by seconds, in both directions.
            refused = self.request("DELETE", f"{path}?if-empty=true", expect=(204, 400, 404))
            if refused is not None:
                raise CredentialsError(
                    f"retry queue {wanted['name']!r} (vhost {wanted['vhost']!r}) was declared "
                    f"with other arguments by an older version and still holds messages "
                    f"({refused.get('reason', refused)}): let them flow back to their queue, "
                    f"then run the setup again"
                )

    def lookup(self, path: str) -> dict[str, Any] | None:
        found = self.request("GET", path, expect=(200, 404))
        return found if isinstance(found, dict) and "name" in found else None

    def delete_users(self, users: list[str]) -> None:
        for user in users:
            self.request("DELETE", f"/api/users/{quote(user)}", expect=(204, 404))


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def setup_broker(env: Mapping[str, str]) -> list[str]:
    management = Management(env.get(MANAGEMENT_URL_ENV) or LOCAL_MANAGEMENT_URL)
    logins = broker_logins(env)
    vhost = check_logins(logins, management.user)
    management.apply(broker_definitions(logins, vhost))
    return [user for user, _, _ in logins.values()]


def setup_databases(env: Mapping[str, str]) -> list[str]:
    admin_url = env.get(POSTGRES_ADMIN_URL_ENV) or f"{LOCAL_POSTGRES_URL}/postgres"
    done = []
    for name, settings in service_settings().items():
        try:
            created = migrations.ensure_role_and_database(admin_url, settings.database_url)
        except migrations.SetupError as exc:
            raise CredentialsError(f"{name}: {exc}") from exc
        done.append(f"{name}{' (created)' if created else ''}")
    return done


def main() -> int:
    try:
        users = setup_broker(os.environ)
        databases = setup_databases(os.environ)
    except CredentialsError as exc:
        sys.stderr.write(f"credentials setup failed: {exc}\n")
        return 1
    sys.stdout.write(
        f"broker users: {', '.join(users)}; database roles and databases: {', '.join(databases)}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
