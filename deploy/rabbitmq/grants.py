"""Who may do what with the platform's topology (least privilege): the broker users of
deploy/rabbitmq/definitions.json, their permissions and topic permissions
(deploy/rabbitmq/generate.py writes them; deploy/credentials/setup.py applies them).

Access (RabbitMQ permission regexes match queue and exchange names alike; the default exchange
is written ``amq.default``):

- each service: configure its own queues (``<service>.*``) and the core exchanges it declares at
  start (``events``, ``events.dlx``, ``events.retry``, ``events.unrouted`` and its queue); write
  to ``events.retry`` (retries) and ``events.dlx`` (dead letters), and to ``events`` only if it
  publishes; never to the default exchange (a direct exchange: no topic permission could limit
  it, and it reaches every queue by name). Read its own queues and the exchanges it binds them
  to. Topic permissions on ``events`` limit publishing to ``<service>.*`` (nothing for services
  that publish nothing) and binding to the routing keys the service subscribes to: every
  version's key its handler accepts (``accounts.user_signed_up`` and ``...user_signed_up.v2``),
  so a restart with another version setting can bind the new key and unbind the old; on
  ``events.retry`` and ``events.dlx`` (topic exchanges, every queue bound by its own name)
  publishing and binding to ``<service>.*``, i.e. its own queues only.
- the history stream ``events.history``: every service and ``events-reader`` may read
  (consume) it; nobody may write to it (no write regex matches it; a binding needs write access
  to the queue, so only the administrator who loads these definitions binds it). Services
  configure nothing of it either (they never declare it; the definitions do).
- ``signup-dlq-janitor`` (the dlq-janitor role: ``signup-dlq drop-erased --all --every``): what
  drop-erased needs, which is the operator's grants: read the ``*.dlq`` queues (``basic.get``,
  ack; the depth with a passive declare, which needs no permission), write to the default
  exchange (a kept dead letter is published back to its DLQ by name), tag ``management`` (the
  DLQ list). RabbitMQ checks a publish to the default exchange against the exchange only (it is
  a direct exchange: no topic permission applies), so "publish to the DLQs only" cannot be
  granted: like the operator, it could publish into any queue by name, never to ``events``, and
  it consumes, declares, binds and deletes nothing else. A user of its own so that its password
  is in the janitor's secret only (rotated, revoked apart from the operator's).
- ``events-reader`` (a team or tool reading the history): read ``events.history``, nothing else;
  configure and write nothing; no topic permission (every topic exchange: nothing).
- ``signup-dlq`` (operator): read the ``*.dlq`` queues, write to the default exchange (replay to
  the original queue by name: the operator may write into any queue, that is its job), configure
  nothing, tag ``management`` (queue list through the management API).
- ``keda`` (only in the committed file, for Kubernetes): KEDA reads queue depths through the
  management API (deploy/k8s). Tag ``monitoring`` (it sees every queue's figures, read-only);
  no permission to configure, write or read anything, so it can neither publish nor consume.
  Set its real password after importing: ``rabbitmqctl change_password keda '<password>'``.
"""

import base64
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signup_contracts.amqp import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    HISTORY_STREAM,
    RETRY_EXCHANGE,
    UNROUTED_EXCHANGE,
)
from signup_dlq.config import JANITOR_USER, OPERATOR_USER
from signup_shared.messaging import topology

# outboxes (their relays publish <service>.*): events, and the erasure confirmations
PUBLISHERS = frozenset({"accounts", "notifications", "provisioning", "stats"})
NOTHING = "^$"
HASHING = "rabbit_password_hashing_sha256"
MONITORING_USER = "keda"
READER_USER = "events-reader"
HISTORY = re.escape(HISTORY_STREAM)
OWN_QUEUE_EXCHANGES = (DEAD_LETTER_EXCHANGE, RETRY_EXCHANGE)


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
    own_topic_write: str = NOTHING  # on events.retry and events.dlx: the user's own queues
    own_topic_read: str = NOTHING


def one_of(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


def service_access(service: str, user: str, queues: Sequence[topology.ConsumerQueue]) -> Access:
    own = re.escape(f"{service}.") + ".+"
    core = [
        re.escape(name)
        for name in (
            EVENTS_EXCHANGE,
            DEAD_LETTER_EXCHANGE,
            RETRY_EXCHANGE,
            UNROUTED_EXCHANGE,
        )
    ]
    events, dlx, retry, unrouted = core
    publishes = service in PUBLISHERS
    own_keys = f"^{re.escape(service + '.')}"
    return Access(
        user=user,
        configure=one_of(own, *core),
        write=one_of(own, dlx, retry, unrouted, *([events] if publishes else [])),
        read=one_of(own, *core, HISTORY),
        topic_write=own_keys if publishes else NOTHING,
        topic_read=one_of(
            *sorted(re.escape(key) for queue in queues for key in queue.subscribed_keys)
        )
        if queues
        else NOTHING,
        own_topic_write=own_keys,
        own_topic_read=own_keys,
    )


def operator_access(user: str) -> Access:
    return Access(
        user=user,
        configure=NOTHING,
        write=f"^{re.escape('amq.default')}$",
        read="^.+" + re.escape(".dlq") + "$",
        topic_write=NOTHING,
        topic_read=NOTHING,
        tags=("management",),
    )


def janitor_access(user: str) -> Access:
    """``signup-dlq-janitor``: exactly what ``drop-erased`` needs, the operator's grants."""
    return operator_access(user)


def reader_access(user: str) -> Access:
    """``events-reader``: consumes the history stream, and nothing else."""
    return Access(
        user=user,
        configure=NOTHING,
        write=NOTHING,
        read=f"^{HISTORY}$",
        topic_write=NOTHING,
        topic_read=NOTHING,
    )


def monitoring_access(user: str) -> Access:
    return Access(
        user=user,
        configure=NOTHING,
        write=NOTHING,
        read=NOTHING,
        topic_write=NOTHING,
        topic_read=NOTHING,
        tags=("monitoring",),
    )


def access(
    queues: Mapping[str, Sequence[topology.ConsumerQueue]],
    users: Mapping[str, str] | None = None,
) -> list[Access]:
    """Every user of the platform: one per service of ``queues`` (service -> its consumer
    queues, in order), the operator, the dlq janitor and the history's reader; ``users`` maps
    service (or ``signup-dlq``, ``signup-dlq-janitor``, ``events-reader``) to a user name."""
    roles = (*queues, OPERATOR_USER, JANITOR_USER, READER_USER)
    names = {name: name for name in roles} | dict(users or {})
    return [
        *(service_access(s, names[s], service_queues) for s, service_queues in queues.items()),
        operator_access(names[OPERATOR_USER]),
        janitor_access(names[JANITOR_USER]),
        reader_access(names[READER_USER]),
    ]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user(grant: Access, password: str, salt: bytes | None = None) -> dict[str, Any]:
    return {
        "name": grant.user,
        "password_hash": password_hash(password, salt),
        "hashing_algorithm": HASHING,
        "tags": list(grant.tags),
        "limits": {},
    }


def permission(grant: Access, vhost: str) -> dict[str, Any]:
    return {
        "user": grant.user,
        "vhost": vhost,
        "configure": grant.configure,
        "write": grant.write,
        "read": grant.read,
    }


def topic_permissions(grant: Access, vhost: str) -> list[dict[str, Any]]:
    """On ``events``: the user's events; on ``events.dlx``/``events.retry``: its own queues.

    Every user gets one on each topic exchange: RabbitMQ allows every routing key on an exchange
    for which a user has no topic permission at all.
    """
    return [
        {
            "user": grant.user,
            "vhost": vhost,
            "exchange": EVENTS_EXCHANGE,
            "write": grant.topic_write,
            "read": grant.topic_read,
        },
        *(
            {
                "user": grant.user,
                "vhost": vhost,
                "exchange": exchange,
                "write": grant.own_topic_write,
                "read": grant.own_topic_read,
            }
            for exchange in OWN_QUEUE_EXCHANGES
        ),
    ]


def access_definitions(
    grants: Sequence[Access], passwords: Mapping[str, str], vhost: str, *, fixed_salt: bool = False
) -> dict[str, Any]:
    """Users, permissions and topic permissions; ``fixed_salt`` makes the file reproducible."""
    return {
        "users": [
            user(
                g,
                passwords[g.user],
                hashlib.sha256(g.user.encode()).digest()[:4] if fixed_salt else None,
            )
            for g in grants
        ],
        "permissions": [permission(g, vhost) for g in grants],
        "topic_permissions": [p for g in grants for p in topic_permissions(g, vhost)],
    }
