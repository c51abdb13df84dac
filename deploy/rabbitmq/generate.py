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

Access (RabbitMQ permission regexes match queue and exchange names alike; the default exchange
is written ``amq.default``):

- each service: configure its own queues (``<service>.*``) and the core exchanges it declares at
  start (``events``, ``events.dlx``, ``events.unrouted`` and its queue); write to the default
  exchange (retries) and ``events.dlx`` (dead letters), and to ``events`` only if it publishes;
  read its own queues and the exchanges it binds them to. Topic permissions on ``events`` limit
  publishing to ``<service>.*`` (nothing for services that publish nothing) and binding to the
  routing keys the service subscribes to.
- ``signup-dlq`` (operator): read the ``*.dlq`` queues, write to the default exchange (replay),
  configure nothing, tag ``management`` (queue list through the management API).

    .venv/bin/python deploy/rabbitmq/generate.py
"""

import base64
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu.entity import Exchange, Queue

from accounts.bootstrap import queues as accounts_queues
from accounts.settings import AccountsSettings
from notifications.bootstrap import queues as notifications_queues
from notifications.settings import NotificationsSettings
from provisioning.bootstrap import queues as provisioning_queues
from provisioning.settings import ProvisioningSettings
from signup_dlq.config import OPERATOR_USER
from signup_shared.messaging import topology
from signup_shared.settings import local_password
from stats.bootstrap import queues as stats_queues
from stats.settings import StatsSettings

OUTPUT = Path(__file__).with_name("definitions.json")
VHOST = "/"
SERVICES = ("accounts", "notifications", "provisioning", "stats")
PUBLISHERS = frozenset({"accounts", "provisioning"})  # outbox relays: they publish <service>.*
NOTHING = "^$"
HASHING = "rabbit_password_hashing_sha256"


def service_queues() -> dict[str, list[topology.ConsumerQueue]]:
    return {
        "accounts": accounts_queues(AccountsSettings()),
        "notifications": notifications_queues(NotificationsSettings()),
        "provisioning": provisioning_queues(ProvisioningSettings()),
        "stats": stats_queues(StatsSettings()),
    }


def consumer_queues() -> list[topology.ConsumerQueue]:
    return [queue for queues in service_queues().values() for queue in queues]


@dataclass(frozen=True)
class Access:
    """What one broker user may do in a vhost: permission regexes and topic permissions."""

    user: str
    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str
    tags: tuple[str, ...] = ()


def one_of(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


def service_access(service: str, user: str, queues: Sequence[topology.ConsumerQueue]) -> Access:
    own = re.escape(f"{service}.") + ".+"
    core = [re.escape(name) for name in (topology.EVENTS_EXCHANGE,
                                          topology.DEAD_LETTER_EXCHANGE, topology.UNROUTED)]
    events, dlx, unrouted = core
    publishes = service in PUBLISHERS
    return Access(
        user=user,
        configure=one_of(own, *core),
        write=one_of(own, dlx, unrouted, re.escape("amq.default"),
                     *([events] if publishes else [])),
        read=one_of(own, *core),
        topic_write=f"^{re.escape(service + '.')}" if publishes else NOTHING,
        topic_read=one_of(*sorted(re.escape(queue.routing_key) for queue in queues))
        if queues else NOTHING,
    )


def operator_access(user: str) -> Access:
    return Access(user=user, configure=NOTHING, write=f"^{re.escape('amq.default')}$",
                  read="^.+" + re.escape(".dlq") + "$", topic_write=NOTHING, topic_read=NOTHING,
                  tags=("management",))


def access(users: Mapping[str, str] | None = None) -> list[Access]:
    """Every user of the platform; ``users`` maps service (or ``signup-dlq``) to a user name."""
    names = {name: name for name in (*SERVICES, OPERATOR_USER)} | dict(users or {})
    queues = service_queues()
    return [*(service_access(s, names[s], queues[s]) for s in SERVICES),
            operator_access(names[OPERATOR_USER])]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user(grant: Access, password: str, salt: bytes | None = None) -> dict[str, Any]:
    return {"name": grant.user, "password_hash": password_hash(password, salt),
            "hashing_algorithm": HASHING, "tags": list(grant.tags), "limits": {}}


def permission(grant: Access, vhost: str) -> dict[str, Any]:
    return {"user": grant.user, "vhost": vhost, "configure": grant.configure,
            "write": grant.write, "read": grant.read}


def topic_permission(grant: Access, vhost: str) -> dict[str, Any]:
    return {"user": grant.user, "vhost": vhost, "exchange": topology.EVENTS_EXCHANGE,
            "write": grant.topic_write, "read": grant.topic_read}


def access_definitions(
    grants: Sequence[Access], passwords: Mapping[str, str], vhost: str, *, fixed_salt: bool = False
) -> dict[str, Any]:
    """Users, permissions and topic permissions; ``fixed_salt`` makes the file reproducible."""
    return {
        "users": [user(g, passwords[g.user],
                       hashlib.sha256(g.user.encode()).digest()[:4] if fixed_salt else None)
                  for g in grants],
        "permissions": [permission(g, vhost) for g in grants],
        "topic_permissions": [topic_permission(g, vhost) for g in grants],
    }



def exchange(entity: Exchange) -> dict[str, Any]:
    return {"name": entity.name, "vhost": VHOST, "type": entity.type, "durable": True,
            "auto_delete": False, "internal": False,
            "arguments": dict(getattr(entity, "arguments", None) or {})}


def queue(entity: Queue) -> dict[str, Any]:
    return {"name": entity.name, "vhost": VHOST, "durable": True, "auto_delete": False,
            "arguments": dict(getattr(entity, "queue_arguments", None) or {})}


def binding(entity: Queue) -> dict[str, Any]:
    return {"source": entity.exchange.name, "vhost": VHOST, "destination": entity.name,
            "destination_type": "queue", "routing_key": entity.routing_key, "arguments": {}}


def topology_definitions() -> dict[str, Any]:
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


def definitions() -> dict[str, Any]:
    """The committed file: topology, and the users with their local development passwords."""
    grants = access()
    passwords = {g.user: local_password(g.user) for g in grants}
    return topology_definitions() | access_definitions(grants, passwords, VHOST, fixed_salt=True)


def render() -> str:
    return json.dumps(definitions(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
