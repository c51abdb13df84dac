"""audit command line: ``audit consume|catch-up|migrate|topology``.

``audit catch-up --from first`` (or ``AUDIT_CATCH_UP_FROM=first audit consume``) records every
signup the event history still holds, then (``consume``) goes on with the live queue.
"""

from pathlib import Path

from audit import bootstrap
from audit.settings import AuditSettings
from signup_shared import cli
from signup_shared.worker import run_worker

MIGRATIONS = Path(__file__).parent / "migrations"


def consume(settings: AuditSettings) -> None:
    """consume the live queue (after a catch-up, if one is asked for)"""
    run_worker(bootstrap.consumer_worker(settings))


def migrate(settings: AuditSettings) -> None:
    """create the database if missing and upgrade it"""
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: AuditSettings) -> None:
    """declare the core exchanges and audit's queues"""
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("audit", __doc__, AuditSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
