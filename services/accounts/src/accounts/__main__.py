"""accounts command line: relay, consume, migrate, topology, keys, erasures (the API is
``accounts-web``)."""

from pathlib import Path

from accounts import bootstrap, commands
from accounts.settings import AccountsSettings
from signup_shared import cli
from signup_shared.outbox import operator as outbox
from signup_shared.outbox.runner import run_relay
from signup_shared.worker import run_worker

MIGRATIONS = Path(__file__).parent / "migrations"


def relay(settings: AccountsSettings) -> None:
    run_relay(
        bootstrap.relay(settings), settings.amqp_url, settings.http_host, settings.relay_health_port
    )


def consume(settings: AccountsSettings) -> None:
    run_worker(bootstrap.consumer_worker(settings))


def migrate(settings: AccountsSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: AccountsSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"relay": relay, "consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    if commands.wanted(argv):  # accounts keys create|list|revoke, accounts erasures [--pending]
        return commands.main(argv)
    if outbox.wanted(argv):  # accounts outbox parked | retry (--id EVENT_ID ... | --all)
        return outbox.main("accounts", AccountsSettings, bootstrap.relay, argv)
    cli.run("accounts", __doc__, AccountsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
