"""The command line every service shares: ``<service> <command>`` with settings and logging."""

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from signup_shared import lifecycle, migrations, tracing
from signup_shared.logging import configure_logging
from signup_shared.messaging import topology
from signup_shared.messaging.connection import connect
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
log = structlog.get_logger(__name__)


def run(
    prog: str,
    description: str | None,
    settings_class: Callable[[], S],
    commands: Mapping[str, Callable[[S], None]],
    argv: list[str] | None = None,
) -> None:
    lifecycle.die_with_parent()  # first: this process must not outlive its supervisor
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=sorted(commands))
    args = parser.parse_args(argv)
    settings = settings_class()
    configure_logging(f"{prog}-{args.command}", settings.log_level, settings.log_format)
    tracing.configure_tracing(f"{prog}-{args.command}")
    try:
        commands[args.command](settings)
    finally:
        tracing.shutdown()  # hands finished spans to the exporter before the process ends


def migrate(database_url: str, migrations_dir: Path) -> None:
    """``<service> migrate``: create the service's database if missing, apply its migrations."""
    created = migrations.ensure_database(database_url)
    migrations.upgrade(database_url, migrations_dir)
    log.info("database.migrated", created=created)


def declare_topology(amqp_url: str, queues: Sequence[ConsumerQueue]) -> None:
    """``<service> topology``: declare the core exchanges and the service's queues."""
    with connect(amqp_url, name="topology") as connection:
        topology.declare(connection, queues)
    log.info("topology.declared", queues=[queue.name for queue in queues])
