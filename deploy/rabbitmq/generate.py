"""Writes deploy/rabbitmq/definitions.json: the topology each service declares in code, and who
may do what with it (least privilege).

The JSON is for deployments that load definitions at boot (``rabbitmqctl import_definitions``
or the management plugin's ``load_definitions``); ``make run`` applies the same definitions
through ``deploy/credentials/setup.py`` (with the passwords of the environment), and the
services declare the same topology at start. A test checks that the committed file matches the
code. Its users carry the hashes of the local development passwords (``local-dev-<user>``), not
of any real secret: a deployment sets real passwords through the environment (the setup script
hashes them with fresh salts). The file holds no administrator; RabbitMQ does not create
``guest`` when definitions are loaded at boot, so such a deployment adds its own.

Who may do what (the users, their permissions and topic permissions): deploy/rabbitmq/grants.py.

    .venv/bin/python deploy/rabbitmq/generate.py
"""

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kombu.entity import Exchange, Queue

from accounts.bootstrap import queues as accounts_queues
from accounts.settings import AccountsSettings
from audit.bootstrap import queues as audit_queues
from audit.settings import AuditSettings
from notifications.bootstrap import queues as notifications_queues
from notifications.settings import NotificationsSettings
from provisioning.bootstrap import queues as provisioning_queues
from provisioning.settings import ProvisioningSettings
from signup_shared.messaging import history_stream, topology
from signup_shared.settings import HistorySettings, local_password
from stats.bootstrap import queues as stats_queues
from stats.settings import StatsSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grants  # deploy/rabbitmq is a folder of scripts, not a package

OUTPUT = Path(__file__).with_name("definitions.json")
VHOST = "/"
SERVICES = ("accounts", "notifications", "provisioning", "stats", "audit")


def service_queues() -> dict[str, list[topology.ConsumerQueue]]:
    return {
        "accounts": accounts_queues(AccountsSettings()),
        "notifications": notifications_queues(NotificationsSettings()),
        "provisioning": provisioning_queues(ProvisioningSettings()),
        "stats": stats_queues(StatsSettings()),
        "audit": audit_queues(AuditSettings()),
    }


def consumer_queues() -> list[topology.ConsumerQueue]:
    return [queue for queues in service_queues().values() for queue in queues]


def access(users: Mapping[str, str] | None = None) -> list[grants.Access]:
    """Every user of the platform, for the queues the services declare in code; ``users`` maps
    service (or ``signup-dlq``, ``events-reader``) to a user name."""
    queues = service_queues()
    return grants.access({service: queues[service] for service in SERVICES}, users)


def exchange(entity: Exchange) -> dict[str, Any]:
    return {
        "name": entity.name,
        "vhost": VHOST,
        "type": entity.type,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": dict(getattr(entity, "arguments", None) or {}),
    }


def queue(entity: Queue) -> dict[str, Any]:
    return {
        "name": entity.name,
        "vhost": VHOST,
        "durable": True,
        "auto_delete": False,
        "arguments": dict(getattr(entity, "queue_arguments", None) or {}),
    }


def binding(entity: Queue, source: str, routing_key: str) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": VHOST,
        "destination": entity.name,
        "destination_type": "queue",
        "routing_key": routing_key,
        "arguments": {},
    }


def topology_definitions(history: HistorySettings | None = None) -> dict[str, Any]:
    exchanges = list(topology.CORE_EXCHANGES)
    queues = [topology.unrouted_queue, history_stream.history_stream(history)]
    for consumer_queue in consumer_queues():
        queues.extend(consumer_queue.all_queues())
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": [exchange(e) for e in exchanges],
        "queues": [queue(q) for q in queues],
        "bindings": sorted(  # a queue's kombu bindings are a set: sorted, to be reproducible
            [
                *(
                    binding(q, q.exchange.name, q.routing_key)
                    for q in queues
                    if q.exchange is not None and q.exchange.name
                ),
                *(binding(q, b.exchange.name, b.routing_key) for q in queues for b in q.bindings),
            ],
            key=lambda item: (item["source"], item["destination"], item["routing_key"]),
        ),
    }


def definitions() -> dict[str, Any]:
    """The committed file: topology, and the users with their local development passwords."""
    users = [*access(), grants.monitoring_access(grants.MONITORING_USER)]
    passwords = {g.user: local_password(g.user) for g in users}
    committed = topology_definitions(HistorySettings.model_construct())  # defaults, not the env
    return committed | grants.access_definitions(users, passwords, VHOST, fixed_salt=True)


def render() -> str:
    return json.dumps(definitions(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
