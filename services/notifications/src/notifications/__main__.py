"""notifications command line: ``notifications consume|sweep|migrate|topology``."""

from pathlib import Path

import structlog

from notifications import bootstrap
from notifications.actions import Outcome
from notifications.settings import NotificationsSettings
from signup_shared import cli
from signup_shared.worker import run_worker

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("notifications")


def consume(settings: NotificationsSettings) -> None:
    """Consume ``UserSignedUp`` and, beside it, sweep stale notifications and prune the inbox."""
    run_worker(bootstrap.consumer_worker(settings))


def sweep(settings: NotificationsSettings) -> None:
    parts = bootstrap.deliverers(settings)
    try:
        results = parts.sweep()
    finally:
        parts.close()
        parts.engine.dispose()
    log.info(
        "sweep.done",
        stale=len(results),
        sent=sum(result.outcome is Outcome.SENT for result in results),
    )


def migrate(settings: NotificationsSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: NotificationsSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"consume": consume, "sweep": sweep, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("notifications", __doc__, NotificationsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
