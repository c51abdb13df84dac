"""provisioning command line: ``provisioning consume|relay|migrate|topology``."""

from pathlib import Path

from provisioning import bootstrap
from provisioning.settings import ProvisioningSettings
from signup_shared import cli
from signup_shared.outbox import operator as outbox
from signup_shared.outbox.runner import run_relay
from signup_shared.worker import run_worker

MIGRATIONS = Path(__file__).parent / "migrations"


def relay(settings: ProvisioningSettings) -> None:
    run_relay(
        bootstrap.relay(settings), settings.amqp_url, settings.http_host, settings.relay_health_port
    )


def consume(settings: ProvisioningSettings) -> None:
    run_worker(bootstrap.consumer_worker(settings))


def migrate(settings: ProvisioningSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: ProvisioningSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"relay": relay, "consume": consume, "migrate": migrate, "topology": declare}


def main(argv: list[str] | None = None) -> None:
    if outbox.wanted(argv):  # provisioning outbox parked | retry (--id EVENT_ID ... | --all)
        return outbox.main("provisioning", ProvisioningSettings, bootstrap.relay, argv)
    cli.run("provisioning", __doc__, ProvisioningSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
