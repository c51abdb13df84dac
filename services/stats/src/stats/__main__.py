"""stats command line: ``stats consume|migrate|topology|web`` (``web`` is also ``stats-web``)."""

import runpy
from pathlib import Path

from signup_shared import cli
from signup_shared.worker import run_worker
from stats import bootstrap
from stats.settings import StatsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def web(_settings: StatsSettings) -> None:
    # Run as its own program rather than imported, so this module (and the consumer process
    # it starts) never loads the web framework.
    runpy.run_module("stats.web", run_name="__main__", alter_sys=True)


def consume(settings: StatsSettings) -> None:
    run_worker(bootstrap.consumer_worker(settings))


def migrate(settings: StatsSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: StatsSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"web": web, "consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("stats", __doc__, StatsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
