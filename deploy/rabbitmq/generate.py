"""Writes deploy/rabbitmq/definitions.json from the topology each service declares in code.

The JSON is for deployments that load definitions at boot (``rabbitmqctl import_definitions``
or the management plugin's ``load_definitions``); the services declare the same topology at
start. A test checks that the committed file matches the code.

    .venv/bin/python deploy/rabbitmq/generate.py
"""

import json
import sys
from pathlib import Path
from typing import Any

from kombu.entity import Exchange, Queue

from accounts.bootstrap import queues as accounts_queues
from accounts.settings import AccountsSettings
from notifications.bootstrap import queues as notifications_queues
from notifications.settings import NotificationsSettings
from provisioning.bootstrap import queues as provisioning_queues
from provisioning.settings import ProvisioningSettings
from signup_shared.messaging import topology
from stats.bootstrap import queues as stats_queues
from stats.settings import StatsSettings

OUTPUT = Path(__file__).with_name("definitions.json")
VHOST = "/"


def consumer_queues() -> list[topology.ConsumerQueue]:
    return [
        *accounts_queues(AccountsSettings()),
        *notifications_queues(NotificationsSettings()),
        *provisioning_queues(ProvisioningSettings()),
        *stats_queues(StatsSettings()),
    ]


def exchange(entity: Exchange) -> dict[str, Any]:
    return {"name": entity.name, "vhost": VHOST, "type": entity.type, "durable": True,
            "auto_delete": False, "internal": False, "arguments": dict(entity.arguments or {})}


def queue(entity: Queue) -> dict[str, Any]:
    return {"name": entity.name, "vhost": VHOST, "durable": True, "auto_delete": False,
            "arguments": dict(entity.queue_arguments or {})}


def binding(entity: Queue) -> dict[str, Any]:
    return {"source": entity.exchange.name, "vhost": VHOST, "destination": entity.name,
            "destination_type": "queue", "routing_key": entity.routing_key, "arguments": {}}


def definitions() -> dict[str, Any]:
    exchanges = [topology.unrouted_exchange, topology.events_exchange,
                 topology.dead_letter_exchange]
    queues = [topology.unrouted_queue]
    for consumer_queue in consumer_queues():
        queues.extend(consumer_queue.all_queues())
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": [exchange(e) for e in exchanges],
        "queues": [queue(q) for q in queues],
        "bindings": [binding(q) for q in queues if q.exchange is not None and q.exchange.name],
    }


def render() -> str:
    return json.dumps(definitions(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
