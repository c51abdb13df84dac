"""accounts command line: relay, consume, migrate, topology (the API is ``accounts-web``)."""

from pathlib import Path

import structlog

from accounts import bootstrap
from accounts.settings import AccountsSettings
from signup_shared import cli, migrations
from signup_shared.process import stop_on_signals

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("accounts")


def relay(settings: AccountsSettings) -> None:
    bootstrap.relay(settings).run(stop_on_signals())


def consume(settings: AccountsSettings) -> None:
    bootstrap.consumer(settings).run(stop_on_signals())


def migrate(settings: AccountsSettings) -> None:
    created = migrations.ensure_database(settings.database_url)
    migrations.upgrade(settings.database_url, MIGRATIONS)
    log.info("database.migrated", created=created)


def declare(settings: AccountsSettings) -> None:
    bootstrap.declare_topology(settings)
    log.info("topology.declared", queues=[q.name for q in bootstrap.queues(settings)])


COMMANDS = {"relay": relay, "consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("accounts", __doc__, AccountsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
