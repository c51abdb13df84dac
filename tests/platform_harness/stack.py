"""A private copy of the platform: its own databases, RabbitMQ vhost, ports and working folder.

The processes are the ones ``make run`` starts (read from ``deploy/Procfile`` through
``deploy/supervisor/config.py``), so the tests exercise exactly what operators run:
``consumer_processes=N`` runs N competing instances of each consuming role (``notifications-1``
.. ``notifications-N``), and ``supervised=True`` runs them all under supervisord, as ``make run``
does (one log file per program instead of the console). ``held=("audit",)`` starts every program
but those (a test starts them later with ``start_process``). Nothing is left behind: ``close()``
stops the processes, drops the databases and deletes the vhost.

Every process of a stack carries ``SIGNUP_STACK=<name>`` in its environment (``platform_pids``
finds them). The processes die with the thread that started them (``signup_shared.lifecycle``):
start and restart them from the test's main thread.

``Stack`` is its settings (ports, environment, URLs) and lifecycle here; its parts live beside:
``processes`` (start, signal, stop), ``readiness`` (waiting), ``credentials`` (vhost, users,
databases, keys), ``observations`` (what tests read), ``programs`` (the deploy files it runs).
"""

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from platform_harness.credentials import Credentials
from platform_harness.observations import Observations
from platform_harness.processes import Processes
from platform_harness.programs import (
    JANITOR,
    KEY_READERS,
    PORT_SETTINGS,
    REPO,
    SERVICES,
    SERVICES_PREFIXES,
    free_port,
    procfile,
    supervisor_config,
)
from platform_harness.readiness import Readiness, wait_until
from signup_shared.testing import postgres_server_url

__all__ = [
    "AMQP_HOST",
    "MANAGEMENT",
    "REPO",
    "SERVICES",
    "Stack",
    "free_port",
    "running_stack",
    "wait_until",
]

# Read when called (``_management``): the cluster tests point it at their cluster's API.
MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
AMQP_HOST = os.environ.get("TEST_AMQP_HOSTPORT", "127.0.0.1:5672")


@dataclass
class Stack(Processes, Readiness, Credentials, Observations):
    name: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    consumer_processes: int = 1
    supervised: bool = False
    held: tuple[str, ...] = ()
    root: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    ports: dict[str, int] = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.ports = {
            key: free_port()
            for key in (
                "accounts",
                "notifications",
                "provisioning",
                "stats",
                "stats_consumer",
                "audit_consumer",
                "accounts_consumer",
                "dlq_janitor",
                "accounts_relay",
                "provisioning_relay",
                "smtp",
                "sms",
            )
        }
        vhost = urllib.parse.quote(self.name, safe="")
        # Least privilege as in `make run`: each service has its own broker user and database
        # role, created for this stack only. ``amqp_url`` (the administrator) is for the tests.
        self.amqp_url = f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
        self.passwords = {service: secrets.token_hex(12) for service in (*SERVICES, JANITOR)}
        self.broker_users = {service: f"{self.name}-{service}" for service in (*SERVICES, JANITOR)}
        env = {k: v for k, v in os.environ.items() if not k.startswith(SERVICES_PREFIXES)}
        env.update(
            {
                "PATH": f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "LOG_FORMAT": "json",
                "SMTP_SINK_PORT": str(self.ports["smtp"]),
                "SMS_SINK_PORT": str(self.ports["sms"]),
                "NOTIFICATIONS_SMTP_PORT": str(self.ports["smtp"]),
                "NOTIFICATIONS_SMS_BASE_URL": f"http://127.0.0.1:{self.ports['sms']}",
                "PROVISIONING_SPACES_ROOT": str(self.root / "var" / "spaces"),
            }
        )
        for variable, port in PORT_SETTINGS.values():
            env[variable] = str(self.ports[port])
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_DATABASE_URL"] = self.database_url(service)
            env[f"{prefix}_AMQP_URL"] = self.service_amqp_url(service)
        # Users' data keys (sealed signups read from the history), as ``make run`` wires them:
        # one keys:read key of accounts' API, written by ``start`` before any consumer starts.
        self.keys_file = self.root / "var" / "keys" / "readers.key"
        for service in KEY_READERS:
            env[f"{service.upper()}_KEYS_URL"] = f"http://127.0.0.1:{self.ports['accounts']}"
            env[f"{service.upper()}_KEYS_API_KEY_FILE"] = str(self.keys_file)
        # The dlq janitor (drop-erased --all --every), as `make run` wires it: its own broker
        # user (and management API login) and users:read key, accounts-web's URL.
        self.janitor_key_file = self.root / "var" / "keys" / "dlq-janitor.key"
        management = urllib.parse.urlsplit(MANAGEMENT)
        login = f"{self.broker_users[JANITOR]}:{self.passwords[JANITOR]}"
        env["SIGNUP_DLQ_AMQP_URL"] = self.service_amqp_url(JANITOR)
        env["SIGNUP_DLQ_MANAGEMENT_URL"] = f"http://{login}@{management.hostname}:{management.port}"
        env["SIGNUP_DLQ_ACCOUNTS_URL"] = f"http://127.0.0.1:{self.ports['accounts']}"
        env["SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE"] = str(self.janitor_key_file)
        env["SIGNUP_STACK"] = self.name
        env.update(self.extra_env)
        self.env = env
        self.programs = self._programs()
        self.supervisor: subprocess.Popen[bytes] | None = None

    def _programs(self) -> dict[str, Any]:
        """Procfile name (or ``<role>-<i>``) -> ``Program``; further instances get free ports."""
        config = supervisor_config()
        table_names = {role.name: role.port_env for role in config.ROLES}
        programs = {}
        for program in config.programs(procfile(), self.env, self.consumer_processes):
            variable, key = PORT_SETTINGS[program.role]
            first = program.env.get("SIGNUP_INSTANCE", "1") == "1"
            port = str(self.ports[key] if first else free_port())
            # The role table may still name a port by its old setting (an alias the services
            # accept): both names carry the same port, so either spelling finds it.
            program.env[variable] = port
            program.env[table_names[program.role]] = port
            programs[program.name] = program
        return programs

    # settings ------------------------------------------------------------------------------
    def database_url(self, service: str) -> str:
        """The service's own role, owner of its database (named alike)."""
        name = f"{self.name}_{service}"
        url = make_url(postgres_server_url()).set(
            username=name, password=self.passwords[service], database=name
        )
        return url.render_as_string(hide_password=False)

    def service_amqp_url(self, service: str) -> str:
        """The broker URL(s) of the stack (``extra_env`` may name others) as the service's user."""
        vhost = urllib.parse.quote(self.name, safe="")
        urls = self.extra_env.get("AMQP_URL") or f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
        login = f"{self.broker_users[service]}:{self.passwords[service]}@"
        return ";".join(
            urllib.parse.urlunsplit(parts._replace(netloc=login + parts.netloc.split("@")[-1]))
            for parts in map(urllib.parse.urlsplit, urls.split(";"))
        )

    def _management(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)
    ) -> Any:
        url = urllib.parse.urlsplit(MANAGEMENT)
        base = f"{url.scheme}://{url.hostname}:{url.port}"
        response = httpx.request(
            method,
            base + path,
            json=body,
            timeout=30,
            auth=(url.username or "guest", url.password or "guest"),
        )
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "Stack":
        (self.root / "var" / "log").mkdir(parents=True, exist_ok=True)
        self._create_vhost()
        self._create_databases()
        setups = [
            self._run_async(f"{service} migrate && {service} topology", f"setup-{service}")
            for service in SERVICES
        ]
        for service, setup in zip(SERVICES, setups, strict=True):
            if setup.wait(timeout=120) != 0:
                raise RuntimeError(f"{service} setup failed: {self.log(f'setup-{service}')}")
        self._create_keys_file()
        if self.supervised:
            self.start_supervisor()
        else:
            for name in self.programs:
                if name not in self.held:
                    self.start_process(name)
        self.wait_ready(timeout)
        return self

    def close(self, keep_logs_in: Path | None = None) -> None:
        self.stop()
        if keep_logs_in is not None:
            shutil.copytree(self.root / "var" / "log", keep_logs_in / self.name, dirs_exist_ok=True)
        self._drop_servers_share()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_stack(
    *,
    consumer_processes: int = 1,
    supervised: bool = False,
    start_timeout: float = 60.0,
    held: tuple[str, ...] = (),
    **extra_env: str,
) -> Iterator[Stack]:
    stack = Stack(
        extra_env=extra_env,
        consumer_processes=consumer_processes,
        supervised=supervised,
        held=held,
    )
    try:
        yield stack.start(start_timeout)
    except BaseException:
        stack.close(keep_logs_in=REPO / "var" / "test-logs")
        raise
    # KEEP_STACK_LOGS=1: keep every stack's logs, also of a scenario that failed after its with
    # block (or passed), for reading a timeline afterwards
    stack.close(
        keep_logs_in=REPO / "var" / "test-logs" if os.environ.get("KEEP_STACK_LOGS") else None
    )
