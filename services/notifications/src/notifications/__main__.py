"""notifications command line: ``notifications consume|sweep|migrate|topology``."""

from pathlib import Path

import structlog

from notifications import bootstrap
from notifications.actions import Outcome
from notifications.settings import NotificationsSettings
from signup_shared import cli
from signup_shared.process import HealthServer, stop_on_signals

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("notifications")


def consume(settings: NotificationsSettings) -> None:
    """Consume ``UserSignedUp`` and, beside it, sweep stale notifications and prune the inbox."""
    stop = stop_on_signals()
    worker = bootstrap.worker(settings)
    runtime = worker.consumer()
    health = HealthServer(settings.http_host, settings.http_port,
                          bootstrap.health_checks(worker.engine, runtime)).start()
    worker.start_background_jobs(stop)
    try:
        runtime.run(stop)
    finally:
        stop.set()
        health.stop()
        worker.close()


def sweep(settings: NotificationsSettings) -> None:
    worker = bootstrap.worker(settings)
    try:
        results = worker.sweep()
    finally:
        worker.close()
    log.info("sweep.done", stale=len(results),
             sent=sum(result.outcome is Outcome.SENT for result in results))


def migrate(settings: NotificationsSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: NotificationsSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"consume": consume, "sweep": sweep, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("notifications", __doc__, NotificationsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
