"""The platform's process roles (deploy/roles.toml), for deploy tooling and tests.

deploy/generate.py writes the Procfile, the supervisord configuration, the Prometheus scrape
files and the Kubernetes base from this table (``check`` fails on drift, as tests/deploy does);
``deploy/run.sh`` asks ``python deploy/roles.py ports|ready-urls|listing``.

supervisord (4.3) runs ``make run``: it restarts a crashed program with a growing delay
(``startsecs``/``startretries``), logs every exit while the others keep serving, stops
everything in order on SIGTERM/Ctrl-C, runs several instances of a program (``numprocs``) and
gives operators ``supervisorctl``. Its configuration is static: supervisord itself expands
``%(here)s`` (the configuration's folder), ``%(ENV_CONSUMER_PROCESSES)s`` and
``%(ENV_INSTANCES)s`` (instances per role, exported by run.sh) and ``%(process_num)d``
(0, 1, ...). Instance i of a role listens on its port + 100 * i: supervisord writes i as the
port's hundreds digit (``8%(process_num)d01`` for 8x01 ports), which is why the table's
ports have a 0 there and at most 10 instances run.
"""

import argparse
import os
import shutil
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent
TABLE = DEPLOY / "roles.toml"
COMPONENTS = ("web", "relay", "consumer", "sink", "janitor")
HEALTH = ("ready", "live", "none")
SCALING = ("consumer", "instances", "single")
# The variables naming how many instances of each scaled role run locally (make run).
SCALING_ENV = {"consumer": "CONSUMER_PROCESSES", "instances": "INSTANCES"}
MAX_INSTANCES = 10
PORT_STRIDE = 100
INSTANCE_ENV = "SIGNUP_INSTANCE"
# supervisord: a program that dies within START_SECONDS of starting is retried after 1 s,
# 2 s, ...; after START_RETRIES failed starts in a row it is left stopped (FATAL, logged).
# SIGTERM, then SIGKILL after STOP_WAIT_SECONDS.
START_SECONDS = 5
START_RETRIES = 30
STOP_WAIT_SECONDS = 20


class RoleTableError(ValueError):
    """deploy/roles.toml says something the tooling cannot honour (the message says what)."""


@dataclass(frozen=True)
class Role:
    name: str
    service: str
    component: str
    command: tuple[str, ...]
    port: int
    port_env: str
    health: str
    scaling: str
    queues: tuple[str, ...] = ()
    kubernetes: bool = True

    def argv(self, port: int | str | None = None) -> list[str]:
        value = str(self.port if port is None else port)
        return [part.replace("{port}", value) for part in self.command]

    def port_of(self, instance: int) -> int:
        return self.port + PORT_STRIDE * instance

    def port_pattern(self) -> str:
        """The port with supervisord's instance number as its hundreds digit."""
        text = str(self.port)
        return f"{text[:-3]}%(process_num)d{text[-2:]}"


def load(path: Path = TABLE) -> tuple[Role, ...]:
    try:
        table = tomllib.loads(path.read_text())
        roles = tuple(_role(entry) for entry in table["role"])
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise RoleTableError(f"{path}: {exc!r}") from exc
    names = [role.name for role in roles]
    if len(set(names)) != len(names):
        raise RoleTableError(f"{path}: role names repeat: {names}")
    ports = [role.port_of(i) for role in roles for i in range(MAX_INSTANCES)]
    if len(set(ports)) != len(ports):
        raise RoleTableError(f"{path}: two roles' instance ports overlap")
    return roles


def _role(entry: dict[str, Any]) -> Role:
    role = Role(
        name=entry["name"],
        service=entry["service"],
        component=entry["component"],
        command=tuple(entry["command"]),
        port=int(entry["port"]),
        port_env=entry["port_env"],
        health=entry["health"],
        scaling=entry["scaling"],
        queues=tuple(entry.get("queues", ())),
        kubernetes=bool(entry.get("kubernetes", True)),
    )
    for value, allowed in (
        (role.component, COMPONENTS),
        (role.health, HEALTH),
        (role.scaling, SCALING),
    ):
        if value not in allowed:
            raise RoleTableError(f"role {role.name}: {value!r} is not one of {allowed}")
    if not 1000 <= role.port <= 65535 - PORT_STRIDE * MAX_INSTANCES or str(role.port)[-3] != "0":
        raise RoleTableError(f"role {role.name}: port {role.port} needs a 0 as hundreds digit")
    if role.component == "consumer" and not role.queues:
        raise RoleTableError(f"role {role.name}: a consumer names the queues it scales on")
    return role


# Local processes ---------------------------------------------------------------------------------
def instances(role: Role, env: Mapping[str, str]) -> int:
    """How many instances of ``role`` run locally (CONSUMER_PROCESSES / INSTANCES, 1..10)."""
    variable = SCALING_ENV.get(role.scaling)
    raw = (env.get(variable) if variable else None) or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INSTANCES:
        raise RoleTableError(f"{variable} must be a number from 1 to {MAX_INSTANCES}, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Program:
    """One local process: name (``role`` or ``role-i``), argv and its own environment."""

    name: str
    role: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    health_port: int | None = None


def programs(roles: Sequence[Role], env: Mapping[str, str]) -> list[Program]:
    """Every process ``make run`` starts, ports from ``env`` (the port variables) or the table.

    For the test harness, which starts the same programs on ports of its own; instance 0 of a
    scaled role keeps the plain role name when it runs alone.
    """
    path = env.get("PATH", os.defpath)
    found: list[Program] = []
    for role in roles:
        base = int(env.get(role.port_env) or role.port)
        count = instances(role, env)
        for instance in range(count):
            port = base + PORT_STRIDE * instance
            argv = role.argv(port)
            argv[0] = shutil.which(argv[0], path=path) or argv[0]
            found.append(
                Program(
                    role.name if count == 1 else f"{role.name}-{instance}",
                    role.name,
                    tuple(argv),
                    {role.port_env: str(port), INSTANCE_ENV: str(instance)},
                    port if role.health == "ready" else None,
                )
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local processes of deploy/roles.toml.")
    parser.add_argument(
        "action",
        choices=("ports", "ready-urls", "listing"),
        help="print every local port, the /readyz URLs, or a listing of processes and ports",
    )
    args = parser.parse_args(argv)
    try:
        scaling = {k: v for k, v in os.environ.items() if k in SCALING_ENV.values()}
        listed = programs(load(), scaling)
    except RoleTableError as exc:
        parser.error(str(exc))
    ports = {p.name: next(v for k, v in p.env.items() if k != INSTANCE_ENV) for p in listed}
    if args.action == "ports":
        print(" ".join(ports.values()))
    elif args.action == "ready-urls":
        print(" ".join(f"http://127.0.0.1:{p.health_port}/readyz" for p in listed if p.health_port))
    else:
        for name, port in ports.items():
            print(f"  {name:<20}127.0.0.1:{port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
