"""What a stack runs and where, read from the files ``make run`` reads: the Procfile, the
supervisord programs (deploy/supervisor/config.py) and the credentials setup
(deploy/credentials/setup.py); the setting holding each role's port; free ports."""

import functools
import importlib.util
import random
import socket
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("accounts", "notifications", "provisioning", "stats", "audit")
KEY_READERS = ("notifications", "provisioning", "stats", "audit")
"""The services that open sealed signups of the history with keys from accounts."""
READER = "events-reader"  # the history's reader (deploy/credentials/setup.py)
JANITOR = "dlq-janitor"  # drop-erased --all --every: its broker user and key (signup-dlq-janitor)
# Role -> (the setting holding its port, the key of ``Stack.ports``). The services still accept
# the old names (``*_HTTP_PORT``, ``*_CONSUMER_HTTP_PORT``, ``*_RELAY_HTTP_PORT``) as aliases.
PORT_SETTINGS: dict[str, tuple[str, str]] = {
    "smtp-sink": ("SMTP_SINK_PORT", "smtp"),
    "sms-sink": ("SMS_SINK_PORT", "sms"),
    "accounts-web": ("ACCOUNTS_WEB_PORT", "accounts"),
    "accounts-relay": ("ACCOUNTS_RELAY_HEALTH_PORT", "accounts_relay"),
    "accounts-consumer": ("ACCOUNTS_CONSUMER_HEALTH_PORT", "accounts_consumer"),
    "notifications": ("NOTIFICATIONS_CONSUMER_HEALTH_PORT", "notifications"),
    "provisioning": ("PROVISIONING_CONSUMER_HEALTH_PORT", "provisioning"),
    "provisioning-relay": ("PROVISIONING_RELAY_HEALTH_PORT", "provisioning_relay"),
    "stats": ("STATS_CONSUMER_HEALTH_PORT", "stats_consumer"),
    "stats-web": ("STATS_WEB_PORT", "stats"),
    "audit": ("AUDIT_CONSUMER_HEALTH_PORT", "audit_consumer"),
    "dlq-janitor": ("SIGNUP_DLQ_METRICS_PORT", "dlq_janitor"),
}
SERVICES_PREFIXES = (
    *tuple(f"{s.upper()}_" for s in SERVICES),
    "AMQP_URL",
    "LOG_FORMAT",
    "SIGNUP_DLQ_",
)
"""Settings of the environment a stack does not inherit (it sets its own)."""


# Below Linux's ephemeral range (32768-60999 by default): a port the kernel handed out for
# ``bind(0)`` and that was then released can be taken by any outgoing connection before the
# process meant to listen on it binds it (a stack's start failed so, "Address already in use").
# 25600-25699 stays free for the Erlang distribution ports of the local RabbitMQ cluster.
PORT_RANGE = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range, never handed out twice."""
    while True:
        port = random.choice(PORT_RANGE)
        if port in _handed_out or 25600 <= port < 25700:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def procfile() -> dict[str, str]:
    entries = {}
    for line in (REPO / "deploy" / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


@functools.cache
def supervisor_config() -> ModuleType:
    """deploy/supervisor/config.py: the programs ``make run`` runs and their supervisord file
    (loaded once: its ``Program`` class must be the same for every call)."""
    path = REPO / "deploy" / "supervisor" / "config.py"
    spec = importlib.util.spec_from_file_location("supervisor_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def credentials_setup() -> ModuleType:
    """deploy/credentials/setup.py, which ``make run`` runs (users, permissions, roles)."""
    path = REPO / "deploy" / "credentials" / "setup.py"
    spec = importlib.util.spec_from_file_location("credentials_setup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
