"""Writes the supervisord configuration that ``make run`` starts, from ``deploy/Procfile``.

Why supervisord (4.3) rather than honcho or a hand-written supervisor: honcho stops every
process as soon as one exits, which turned one crash into a full outage. supervisord is the
long-kept standard for exactly this job: it restarts a crashed program on its own with a growing
delay (``startsecs``/``startretries``: a program that dies within ``startsecs`` of starting is
retried after 1 s, 2 s, 3 s, ... and given up, loudly, after ``startretries``), logs every exit
with its status while the other programs keep running, interleaves the programs' output on its
own stdout, stops everything in order on SIGTERM/SIGINT (Ctrl-C) with a deadline, runs several
instances of a program, and gives operators ``supervisorctl status|restart|tail``. It handles
its own stale pid and socket files after a crash. It is pure Python and already in the dev
dependencies. (Alternatives: circus is barely maintained; s6/runit/systemd are not pip
installable and systemd is absent from containers; honcho/foreman do not restart.)

What supervisord does not do is make its children die with it: it puts each child in its own
process group (so a terminal's Ctrl-C reaches only supervisord), hence a SIGKILLed supervisord
leaves them running. Every platform process therefore asks the kernel for SIGTERM when its
parent dies (``signup_shared.lifecycle``, and the same in the dev sinks); programs are started
through ``setpriv --pdeathsig TERM`` as well where util-linux has it, which sets the same flag
and then ``exec``\\ s the program (no process in between, so supervisord stays the parent).

Web and relay roles scale with ``INSTANCES=N`` the same way (ports base + 100 * (i - 1)).
Consuming roles scale out: ``CONSUMER_PROCESSES=N`` (or ``--consumer-processes``) runs N
competing instances of each role in ``CONSUMERS``, ``<role>-1`` .. ``<role>-N``; instance i
gets its health port in the role's variable as base + 100 * (i - 1) (notifications 8001, 8101,
...). One instance keeps the plain role name and base port. The test harness reads the same
functions, so tests run the very programs operators run.

    .venv/bin/python deploy/supervisor/config.py --out var/run/supervisord.conf
"""

import argparse
import os
import re
import secrets
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "deploy" / "Procfile"

# Consuming role (Procfile name) -> (variable holding its health port, default base port).
CONSUMERS: dict[str, tuple[str, int]] = {
    "accounts-consumer": ("ACCOUNTS_CONSUMER_HTTP_PORT", 8010),
    "notifications": ("NOTIFICATIONS_HTTP_PORT", 8001),
    "provisioning": ("PROVISIONING_HTTP_PORT", 8002),
    "stats": ("STATS_CONSUMER_HTTP_PORT", 8013),
}
# Roles whose processes answer /readyz on that port.
# Web and relay roles scale with ``INSTANCES=N``: N web processes on ports base, base + 100, ...
# (one port each, behind whatever balancer fronts them), N relays sharing the outbox (SKIP
# LOCKED: two relays never publish the same row).
OTHER_SCALED: dict[str, tuple[str, int]] = {
    "accounts-web": ("ACCOUNTS_HTTP_PORT", 8000),
    "stats-web": ("STATS_HTTP_PORT", 8003),
    "accounts-relay": ("ACCOUNTS_RELAY_HTTP_PORT", 8020),
    "provisioning-relay": ("PROVISIONING_RELAY_HTTP_PORT", 8022),
}
INSTANCES_ENV = "INSTANCES"
HEALTH_ENDPOINT = ("accounts-consumer", "notifications", "provisioning", "stats")
PORT_STRIDE = 100
CONSUMER_PROCESSES_ENV = "CONSUMER_PROCESSES"

# A program that dies within START_SECONDS counts as a failed start and is retried after 1 s,
# 2 s, 3 s, ...; after START_RETRIES failed starts in a row it is left stopped (FATAL, logged).
# A program that ran longer and then crashed is restarted at once.
START_SECONDS = 5
START_RETRIES = 30
STOP_WAIT_SECONDS = 20  # SIGTERM, then SIGKILL after this long

_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


@dataclass(frozen=True)
class Program:
    """One process to run: its name, argv (program resolved to a path) and extra environment."""

    name: str
    role: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    health_port: int | None = None


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """``name: command`` lines (honcho/foreman format); comments and blank lines skipped."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def expand(command: str, env: Mapping[str, str]) -> str:
    """The shell's ``$VAR``, ``${VAR}`` and ``${VAR:-default}`` (supervisord runs no shell)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        found = env.get(name, "")
        return found if found or default is None else default

    return _VARIABLE.sub(value, command)


def consumer_processes(env: Mapping[str, str]) -> int:
    return _count(env, CONSUMER_PROCESSES_ENV)


def instances(env: Mapping[str, str]) -> int:
    return _count(env, INSTANCES_ENV)


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 9:
        raise ValueError(f"{name} must be a number from 1 to 9, not {raw!r}")
    return int(raw)


def programs(
    procfile: Mapping[str, str], env: Mapping[str, str], processes: int = 1
) -> list[Program]:
    """Every process to run: one per Procfile entry, ``processes`` per consuming role."""
    path = env.get("PATH", os.defpath)
    result: list[Program] = []
    for role, command in procfile.items():
        argv = shlex.split(expand(command, env))
        argv[0] = shutil.which(argv[0], path=path) or argv[0]
        scaled = CONSUMERS.get(role) or OTHER_SCALED.get(role)
        if scaled is None:
            result.append(Program(role, role, tuple(argv)))
            continue
        variable, default = scaled
        base = int(env.get(variable) or default)
        count = processes if role in CONSUMERS else instances(env)
        if count == 1 and role not in CONSUMERS:
            result.append(Program(role, role, tuple(argv)))
            continue
        for instance in range(1, count + 1):
            port = base + PORT_STRIDE * (instance - 1)
            name = role if count == 1 else f"{role}-{instance}"
            result.append(
                Program(
                    name,
                    role,
                    tuple(argv),
                    {variable: str(port), "SIGNUP_INSTANCE": str(instance)},
                    port if role in HEALTH_ENDPOINT else None,
                )
            )
    return result


def parent_death_wrapper() -> tuple[str, ...]:
    """``setpriv --pdeathsig TERM --`` where util-linux provides it (Linux), else nothing."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else ()


def _escape(value: str) -> str:
    """supervisord expands ``%(name)s`` in its values: a literal ``%`` is written ``%%``."""
    return value.replace("%", "%%")


def _environment(env: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(env.items()))


def render(
    programs: Sequence[Program],
    *,
    root: Path,
    run_dir: Path,
    log_dir: Path,
    console: bool = True,
    wrapper: Sequence[str] = (),
    password: str = "",
) -> str:
    """The configuration file's text.

    ``console``: every program's output goes to supervisord's stdout, interleaved (``make
    run``); otherwise each program writes ``<log_dir>/<name>.log`` (the test harness).
    ``password``: for supervisorctl on the control socket (a fresh random one per file; the
    socket is also owner-only), else supervisord warns that it runs without authentication.
    """
    lines = [
        "; Generated by deploy/supervisor/config.py from deploy/Procfile: do not edit.",
        "[supervisord]",
        "nodaemon=true",
        f"directory={_escape(str(root))}",
        f"logfile={_escape(str(log_dir / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_escape(str(run_dir / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(log_dir))}",
        "loglevel=info",
    ]
    if os.geteuid() == 0:  # say so, else supervisord warns that it keeps root privileges
        lines.append("user=root")
    socket = _escape(str(run_dir / "supervisor.sock"))
    lines += [
        "",
        "[unix_http_server]",
        f"file={socket}",
        "chmod=0700",
    ]
    credentials = ["username=signup", f"password={_escape(password)}"] if password else []
    lines += [
        *credentials,
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket}",
        *credentials,
    ]
    for program in programs:
        output = "/dev/stdout" if console else str(log_dir / f"{program.name}.log")
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={_escape(shlex.join([*wrapper, *program.argv]))}",
            f"directory={_escape(str(root))}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(output)}",
            "stdout_logfile_maxbytes=0",
        ]
        if program.env:
            lines.append(f"environment={_environment(program.env)}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "var" / "run" / "supervisord.conf")
    parser.add_argument("--root", type=Path, default=REPO, help="working directory of programs")
    parser.add_argument("--procfile", type=Path, default=PROCFILE)
    parser.add_argument(
        "--consumer-processes",
        type=int,
        default=None,
        help=f"instances per consuming role (default: ${CONSUMER_PROCESSES_ENV})",
    )
    parser.add_argument(
        "--log-files",
        action="store_true",
        help="one log file per program under <root>/var/log, not stdout",
    )
    parser.add_argument(
        "--print-ports",
        action="store_true",
        help="print the consumers' health ports (they answer /readyz) and exit",
    )
    args = parser.parse_args(argv)
    try:
        processes = args.consumer_processes or consumer_processes(os.environ)
        listed = programs(read_procfile(args.procfile), os.environ, processes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.print_ports:
        print(" ".join(str(p.health_port) for p in listed if p.health_port is not None))
        return 0
    root = args.root.resolve()
    run_dir, log_dir = args.out.resolve().parent, root / "var" / "log"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    text = render(
        listed,
        root=root,
        run_dir=run_dir,
        log_dir=log_dir,
        console=not args.log_files,
        wrapper=parent_death_wrapper(),
        password=secrets.token_urlsafe(18),
    )
    args.out.touch(mode=0o600)
    args.out.chmod(0o600)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
