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
"""

import contextlib
import functools
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from devsinks.reading import read_mail, read_sms
from signup_contracts.amqp import HISTORY_STREAM
from signup_shared import migrations
from signup_shared.testing import postgres_server_url

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("accounts", "notifications", "provisioning", "stats", "audit")
KEY_READERS = ("notifications", "provisioning", "stats", "audit")
"""The services that open sealed signups of the history with keys from accounts."""
READER = "events-reader"  # the history's reader (deploy/credentials/setup.py)
MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
AMQP_HOST = os.environ.get("TEST_AMQP_HOSTPORT", "127.0.0.1:5672")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def wait_until(
    condition: Callable[[], Any], timeout: float, interval: float = 0.1, message: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Stack:
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
        self.passwords = {service: secrets.token_hex(12) for service in SERVICES}
        self.broker_users = {service: f"{self.name}-{service}" for service in SERVICES}
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

    def health_ports(self) -> dict[str, int]:
        """Program name -> the port where it answers /readyz (web, relay, consumer processes)."""
        config = supervisor_config()
        ports = {
            "accounts-web": self.ports["accounts"],
            "stats-web": self.ports["stats"],
            "accounts-relay": self.ports["accounts_relay"],
            "provisioning-relay": self.ports["provisioning_relay"],
        }
        for name, program in self.programs.items():
            if program.role in config.HEALTH_ENDPOINT and name not in self.held:
                ports[name] = int(program.env[PORT_SETTINGS[program.role][0]])
        return ports

    # lifecycle -----------------------------------------------------------------------------
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

    def _create_keys_file(self) -> None:
        argv = ["accounts", "keys", "create", "--client", "history-readers", "--scope", "keys:read"]
        # accounts-web: one process, whatever the number of consumer processes
        token = self.command("accounts-web", *argv).splitlines()[1]
        self.keys_file.parent.mkdir(parents=True, exist_ok=True)
        self.keys_file.write_text(token + "\n")
        self.keys_file.chmod(0o600)

    def start_process(self, name: str) -> None:
        self.held = tuple(held for held in self.held if held != name)
        program = self.programs[name]
        log = (self.root / "var" / "log" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            list(program.argv),
            cwd=self.root,
            env={**self.env, **program.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_supervisor(self) -> None:
        """Run every program under supervisord, as ``make run`` does (logs: one file each)."""
        config = supervisor_config()
        run_dir = self.root / "var" / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "supervisord.conf"
        path.write_text(
            config.render(
                list(self.programs.values()),
                root=self.root,
                run_dir=run_dir,
                log_dir=self.root / "var" / "log",
                console=False,
                wrapper=config.parent_death_wrapper(),
                password=secrets.token_hex(12),
            )
        )
        log = (self.root / "var" / "log" / "supervisord-console.log").open("ab")
        self.supervisor = subprocess.Popen(
            # Like deploy/run.sh: the programs check that their parent is this very process.
            ["bash", "-c", 'SIGNUP_PARENT_PID=$$ exec supervisord -c "$0"', str(path)],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_supervisor(self) -> None:
        """SIGKILL supervisord (and nothing else): its programs must now die on their own."""
        assert self.supervisor is not None
        self.supervisor.kill()
        self.supervisor.wait(timeout=10)
        self.supervisor = None

    def platform_pids(self) -> dict[int, str]:
        """Every live process of this stack: pid -> program name (or command line)."""
        marker = f"SIGNUP_STACK={self.name}".encode()
        found: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(") ", 1)[1][:1]
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, IndexError):
                continue
            if marker in environ and state not in ("Z", "X"):
                names = [
                    v.split(b"=", 1)[1]
                    for v in environ
                    if v.startswith(b"SUPERVISOR_PROCESS_NAME=")
                ]
                found[int(entry.name)] = (names[0] if names else command).decode(errors="replace")
        return found

    def program_pid(self, name: str) -> int | None:
        """The pid of a running program (started by supervisord or by the harness)."""
        if name in self.processes:
            return self.processes[name].pid
        pids = [pid for pid, program in self.platform_pids().items() if program == name]
        return pids[0] if pids else None

    def _run_async(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        log = (self.root / "var" / "log" / f"{log_name}.log").open("ab")
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}" if "&&" not in command else command],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        urls = [f"http://127.0.0.1:{port}/readyz" for port in self.health_ports().values()]
        urls.append(f"http://127.0.0.1:{self.ports['sms']}/healthz")

        def ready() -> bool:
            self.assert_running()
            for url in urls:
                try:
                    if httpx.get(url, timeout=2).status_code != 200:
                        return False
                except httpx.HTTPError:
                    return False
            return True

        wait_until(ready, timeout, 0.2, "every process ready")

    def assert_running(self) -> None:
        if self.supervised and (self.supervisor is None or self.supervisor.poll() is not None):
            raise RuntimeError(f"supervisord is not running:\n{self.log('supervisord')[-3000:]}")
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}"
                )

    def signal(self, name: str, signum: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        process.wait(timeout=30)

    def restart(self, name: str) -> None:
        self.start_process(name)

    def stop(self) -> None:
        if self.supervisor is not None:  # it stops its programs (SIGTERM, SIGKILL after 20 s)
            self.supervisor.terminate()
            try:
                self.supervisor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.supervisor.pid, signal.SIGKILL)
                self.supervisor.wait()
            self.supervisor = None
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                print(f"{name} ignored SIGTERM for 20 s and was killed")
        self.processes.clear()

    def close(self, keep_logs_in: Path | None = None) -> None:
        self.stop()
        if keep_logs_in is not None:
            shutil.copytree(self.root / "var" / "log", keep_logs_in / self.name, dirs_exist_ok=True)
        admin = sa.create_engine(f"{postgres_server_url()}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for service in SERVICES:
                connection.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{self.name}_{service}" WITH (FORCE)')
                )
                connection.execute(sa.text(f'DROP ROLE IF EXISTS "{self.name}_{service}"'))
        admin.dispose()
        self._management("DELETE", f"/api/vhosts/{self.name}", expect=(204, 404))
        for user in self.broker_users.values():
            self._management("DELETE", f"/api/users/{user}", expect=(204, 404))
        shutil.rmtree(self.root, ignore_errors=True)

    def _create_vhost(self) -> None:
        self._management("PUT", f"/api/vhosts/{self.name}", expect=(201, 204))
        self._management(
            "PUT",
            f"/api/permissions/{self.name}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
            expect=(201, 204),
        )
        setup = credentials_setup()
        logins = {
            service: (user, self.passwords[service], self.name)
            for service, user in self.broker_users.items()
        }
        logins[setup.OPERATOR_USER] = (f"{self.name}-dlq", secrets.token_hex(12), self.name)
        self.broker_users[setup.OPERATOR_USER] = f"{self.name}-dlq"
        logins[READER] = (f"{self.name}-reader", secrets.token_hex(12), self.name)
        self.broker_users[READER] = f"{self.name}-reader"
        self._management(
            "POST",
            "/api/definitions",
            setup.broker_definitions(logins, self.name),
            expect=(200, 201, 204),
        )

    def _create_databases(self) -> None:
        admin_url = f"{postgres_server_url()}/postgres"
        for service in SERVICES:
            migrations.ensure_role_and_database(admin_url, self.database_url(service))

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

    # observations --------------------------------------------------------------------------
    def log(self, name: str) -> str:
        path = self.root / "var" / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def mail(self) -> list[EmailMessage]:
        return read_mail(self.root / "var" / "mail")

    def sms(self) -> list[dict[str, Any]]:
        return read_sms(self.root / "var" / "sms")

    def resent_emails(self) -> int:
        """Re-sends of an already delivered Message-ID that the SMTP sink did not store again."""
        path = self.root / "var" / "mail" / "duplicates.log"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def sms_faults(self, spec: dict[str, Any] | None) -> None:
        """Make the SMS gateway sink fail (``{"status": 500, "count": 50}``); None clears."""
        url = f"http://127.0.0.1:{self.ports['sms']}/_control/faults"
        response = httpx.request("DELETE" if spec is None else "POST", url, json=spec, timeout=5)
        response.raise_for_status()

    def spaces(self) -> list[str]:
        root = self.root / "var" / "spaces"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.url("stats", "/stats"), timeout=5).json())

    def queues(self) -> dict[str, int]:
        """Queue -> messages waiting; not the history stream (what it keeps is no backlog)."""
        rows = self._management("GET", f"/api/queues/{self.name}?columns=name,messages")
        return {
            row["name"]: int(row.get("messages") or 0)
            for row in rows
            if row["name"] != HISTORY_STREAM
        }

    def queue_consumers(self, queues: list[str]) -> dict[str, int]:
        rows = self._management("GET", f"/api/queues/{self.name}?columns=name,consumers")
        return {
            row["name"]: int(row.get("consumers") or 0) for row in rows if row["name"] in queues
        }

    def kill_pid(self, pid: int) -> None:
        """SIGKILL one process of this stack (refuses a pid that is not one of its own)."""
        if pid not in self.platform_pids():
            raise ValueError(f"{pid} is not a process of stack {self.name}")
        os.kill(pid, signal.SIGKILL)

    def dead_letters(self, queue: str, count: int = 100) -> list[dict[str, Any]]:
        return list(
            self._management(
                "POST",
                f"/api/queues/{self.name}/{queue}/get",
                {"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"},
            )
        )

    def query(self, service: str, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.database_url(service), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return list(connection.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def execute(self, service: str, sql: str, **params: Any) -> int:
        """Run one statement as the service's role and commit it; the number of rows it hit."""
        engine = sa.create_engine(self.database_url(service), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as connection:
                return int(connection.execute(sa.text(sql), params).rowcount)
        finally:
            engine.dispose()

    def command(self, program: str, *argv: str, timeout: float = 60) -> str:
        """Run a service command (``accounts outbox parked``) with ``program``'s environment."""
        done = subprocess.run(
            list(argv),
            cwd=self.root,
            env={**self.env, **self.programs[program].env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv} exited with {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def pids(self) -> dict[str, int]:
        """Program name -> pid of every program the harness itself started (not supervised)."""
        return {name: process.pid for name, process in self.processes.items()}

    def signup(
        self,
        client: httpx.Client,
        index: int,
        *,
        phone: bool,
        plan: str,
        correlation_id: str | None = None,
        accept_language: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "email": f"user{index}-{self.name}@example.com",
            "full_name": f"User {index}",
            "plan": plan,
        }
        if phone:
            body["phone"] = f"+1555{index:07d}"
        headers = {"X-Correlation-ID": correlation_id} if correlation_id else {}
        if accept_language is not None:
            headers["Accept-Language"] = accept_language
        response = client.post(self.url("accounts", "/signups"), json=body, headers=headers)
        assert response.status_code == 201, response.text
        return {**body, **response.json()}


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
}
SERVICES_PREFIXES = (*tuple(f"{s.upper()}_" for s in SERVICES), "AMQP_URL", "LOG_FORMAT")


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


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)
