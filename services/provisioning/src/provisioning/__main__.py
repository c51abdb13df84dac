"""provisioning command line: ``provisioning consume|relay|migrate|topology``."""

from pathlib import Path

import structlog

from provisioning import bootstrap
from provisioning.settings import ProvisioningSettings
from signup_shared import cli
from signup_shared.periodic import every
from signup_shared.process import stop_on_signals

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("provisioning")


def relay(settings: ProvisioningSettings) -> None:
    bootstrap.relay(settings).run(stop_on_signals())


def consume(settings: ProvisioningSettings) -> None:
    engine, sessions = bootstrap.database(settings)
    storage = bootstrap.storage(settings)
    runtime = bootstrap.consumer(settings, sessions, storage)
    stop = stop_on_signals()
    health = bootstrap.health_server(settings, engine, runtime).start()
    every(settings.inbox_prune_interval_seconds, bootstrap.inbox_pruner(settings, sessions), stop,
          name="inbox-prune")
    log.info("consumer.configured", spaces_root=str(storage.root), health_port=health.port)
    try:
        runtime.run(stop)
    finally:
        health.stop()
        engine.dispose()


def migrate(settings: ProvisioningSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: ProvisioningSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"relay": relay, "consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    cli.run("provisioning", __doc__, ProvisioningSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
