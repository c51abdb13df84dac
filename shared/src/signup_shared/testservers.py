"""Which PostgreSQL and RabbitMQ the integration and end-to-end tests use, and why.

In order: the servers named by ``TEST_DATABASE_URL`` / ``TEST_AMQP_URL``; else the local servers
when they answer on their ports; else containers started with testcontainers when a Docker engine
answers; else none, and the tests that need them are skipped with one line saying what is missing.
The choice is made once per test session and printed in pytest's header, so the output tells the
truth about where the tests ran.
"""

import os
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from signup_shared.settings import LOCAL_AMQP_URL, LOCAL_POSTGRES_URL

ENVIRONMENT, LOCAL, CONTAINER, MISSING = "environment", "local", "testcontainers", "missing"


@dataclass(frozen=True)
class Choice:
    """Where one kind of server comes from; ``url`` is None only when ``source`` is MISSING."""

    kind: str
    source: str
    url: str | None
    reason: str

    def describe(self) -> str:
        where = redact_password(self.url) if self.url else "none"
        return f"{self.kind}: {self.source} ({where}){'; ' + self.reason if self.reason else ''}"


def redact_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def choose(
    kind: str,
    env_value: str | None,
    local_url: str,
    local_answers: Callable[[], bool],
    docker_answers: Callable[[], bool],
) -> Choice:
    """The selection rule, free of I/O: the probes are passed in."""
    if env_value:
        return Choice(kind, ENVIRONMENT, env_value, "")
    if local_answers():
        return Choice(kind, LOCAL, local_url, "")
    if docker_answers():
        return Choice(kind, CONTAINER, None, "")
    return Choice(
        kind,
        MISSING,
        None,
        f"no {kind} answers at {redact_password(local_url)}, no TEST_* variable names one and "
        "no Docker engine answers for testcontainers",
    )


def port_answers(url: str, default_port: int, timeout: float = 0.5) -> Callable[[], bool]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return probe


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_both(environ: Mapping[str, str] | None = None) -> tuple[Choice, Choice]:
    env = os.environ if environ is None else environ
    postgres = choose(
        "PostgreSQL",
        env.get("TEST_DATABASE_URL"),
        LOCAL_POSTGRES_URL,
        port_answers(LOCAL_POSTGRES_URL, 5432),
        docker_answers,
    )
    rabbitmq = choose(
        "RabbitMQ",
        env.get("TEST_AMQP_URL"),
        LOCAL_AMQP_URL,
        port_answers(LOCAL_AMQP_URL, 5672),
        docker_answers,
    )
    return postgres, rabbitmq


class Containers(Protocol):
    """Starts servers in containers (``signup_shared.containers``, only where Docker answers)."""

    def postgres(self) -> str: ...

    def rabbitmq(self) -> tuple[str, str]: ...


def resolve(choices: tuple[Choice, Choice], containers: Containers | None) -> dict[str, str]:
    """Environment variables that point the tests at the chosen servers (starting containers)."""
    postgres, rabbitmq = choices
    env: dict[str, str] = {}
    if CONTAINER in (postgres.source, rabbitmq.source) and containers is None:
        raise RuntimeError("a server must come from testcontainers but none can be started")
    if postgres.source == CONTAINER and containers:
        env["TEST_DATABASE_URL"] = containers.postgres()
    elif postgres.url:
        env["TEST_DATABASE_URL"] = postgres.url
    if rabbitmq.source == CONTAINER and containers:
        env["TEST_AMQP_URL"], env["RABBITMQ_MANAGEMENT_URL"] = containers.rabbitmq()
    elif rabbitmq.url:
        env["TEST_AMQP_URL"] = rabbitmq.url
    return env
