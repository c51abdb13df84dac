"""What the RabbitMQ node's log says about one stack's connections (missed heartbeats).

RabbitMQ names a connection by its Erlang process id (``<0.3657.0>``) on every line about it:
the line that grants it access to a vhost, and the ``closing AMQP connection`` line followed by
``missed heartbeats from client, timeout: 20s``. A stack has a vhost of its own, so the
connections of a stack are the ones granted access to its vhost.

``BrokerLog.mark()`` remembers where the log ends; ``missed_heartbeats()`` counts only the closes
written since, so a test sees those of its own run and nothing older.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

LOG_DIR = Path(os.environ.get("RABBITMQ_LOG_DIR", "/var/log/rabbitmq"))
PROCESS = re.compile(r"<\d+\.\d+\.\d+>")
GRANTED = re.compile(r"user '([^']*)' authenticated and granted access to vhost '([^']*)'")
MISSED = "missed heartbeats from client"


def node_log() -> Path:
    """The node's main log (``rabbit@<host>.log``), not the upgrade log."""
    logs = sorted(
        p for p in LOG_DIR.glob("*.log") if not p.name.endswith(("_upgrade.log", "-sasl.log"))
    )
    if not logs:
        raise FileNotFoundError(f"no RabbitMQ log in {LOG_DIR} (set RABBITMQ_LOG_DIR)")
    return max(logs, key=lambda p: p.stat().st_size)


@dataclass
class BrokerLog:
    vhost: str
    path: Path = field(default_factory=node_log)
    offset: int = 0

    def mark(self) -> "BrokerLog":
        self.offset = self.path.stat().st_size
        return self

    def missed_heartbeats(self) -> list[str]:
        """Each connection of the vhost closed for missed heartbeats since ``mark()``: the
        ``closing`` line (address, client name) with the user it had logged in as. Logins are
        read from the whole log: a connection may have opened before the mark."""
        data = self.path.read_bytes()
        users: dict[str, str] = {}
        closing: dict[str, str] = {}
        found: list[str] = []
        position = 0
        for raw in data.splitlines(keepends=True):
            position += len(raw)
            line = raw.decode(errors="replace")
            process = PROCESS.search(line)
            if process is None:
                continue
            pid = process.group(0)
            granted = GRANTED.search(line)
            if granted and granted.group(2) == self.vhost:
                users[pid] = granted.group(1)
            elif "closing AMQP connection" in line:
                closing[pid] = line.strip()
            elif MISSED in line and pid in users and position > self.offset:
                found.append(f"{users[pid]}: {closing.get(pid, '')} {line.strip()}")
        return found
