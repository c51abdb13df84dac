"""A stack's own share of the shared servers, as ``make run`` sets them up: a RabbitMQ vhost
with one broker user per service (and the operator's, the dlq janitor's and the history
reader's), permissions from deploy/credentials/setup.py; one PostgreSQL role and database per
service; the API key with which the consuming services read users' data keys and the dlq
janitor's (users:read). ``_drop_servers_share`` removes it."""

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from platform_harness.programs import JANITOR, READER, SERVICES, credentials_setup
from signup_shared import migrations
from signup_shared.testing import postgres_server_url


class Credentials:
    """The part of ``Stack`` that creates and drops its vhost, users, databases and keys."""

    name: str
    passwords: dict[str, str]
    broker_users: dict[str, str]
    keys_file: Path
    janitor_key_file: Path
    _management: Callable[..., Any]
    database_url: Callable[[str], str]
    command: Callable[..., str]

    def _create_vhost(self) -> None:
        self._management("PUT", f"/api/vhosts/{self.name}", expect=(201, 204))
        self._management(
            "PUT",
            f"/api/permissions/{self.name}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
            expect=(201, 204),
        )
        setup = credentials_setup()
        logins = {
            service: (user, self.passwords[service], self.name)
            for service, user in self.broker_users.items()
        }
        logins[setup.OPERATOR_USER] = (f"{self.name}-dlq", secrets.token_hex(12), self.name)
        self.broker_users[setup.OPERATOR_USER] = f"{self.name}-dlq"
        logins[READER] = (f"{self.name}-reader", secrets.token_hex(12), self.name)
        self.broker_users[READER] = f"{self.name}-reader"
        janitor = (self.broker_users[JANITOR], self.passwords[JANITOR], self.name)
        logins[setup.JANITOR_USER] = janitor
        self._management(
            "POST",
            "/api/definitions",
            setup.broker_definitions(logins, self.name),
            expect=(200, 201, 204),
        )

    def _create_databases(self) -> None:
        admin_url = f"{postgres_server_url()}/postgres"
        for service in SERVICES:
            migrations.ensure_role_and_database(admin_url, self.database_url(service))

    def _create_keys_file(self) -> None:
        """The consumers' keys:read key and the dlq janitor's users:read key (made at once)."""
        made = {
            path: (client, scope)
            for path, client, scope in (
                (self.keys_file, "history-readers", "keys:read"),
                (self.janitor_key_file, "dlq-janitor", "users:read"),
            )
        }

        def create(client: str, scope: str) -> str:
            argv = ["accounts", "keys", "create", "--client", client, "--scope", scope]
            # accounts-web: one process, whatever the number of consumer processes
            return self.command("accounts-web", *argv).splitlines()[1]

        with ThreadPoolExecutor(len(made)) as pool:
            tokens = dict(zip(made, pool.map(lambda k: create(*k), made.values()), strict=True))
        for path, token in tokens.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(token + "\n")
            path.chmod(0o600)

    def _drop_servers_share(self) -> None:
        """Drop the databases and roles, delete the vhost and the broker users."""
        admin = sa.create_engine(f"{postgres_server_url()}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for service in SERVICES:
                connection.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{self.name}_{service}" WITH (FORCE)')
                )
                connection.execute(sa.text(f'DROP ROLE IF EXISTS "{self.name}_{service}"'))
        admin.dispose()
        self._management("DELETE", f"/api/vhosts/{self.name}", expect=(204, 404))
        for user in self.broker_users.values():
            self._management("DELETE", f"/api/users/{user}", expect=(204, 404))
