"""For the test harness only (tests/platform_harness/stack.py): its programs, from the role table.

``make run`` no longer uses this file: it runs the static deploy/supervisor/supervisord.conf
(generated from deploy/roles.toml by deploy/roles.py), where supervisord expands the instance
counts and ports itself. The harness starts the same programs on free ports of its own, which a
static file cannot express, so it still asks this module for ``programs`` and, when it runs them
supervised, for a configuration naming them one by one (``render``). Delete this module once the
harness reads ``deploy/roles.py`` directly.
"""

import importlib.util
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

_ROLES_PATH = Path(__file__).resolve().parents[1] / "roles.py"


def _load_roles() -> ModuleType:
    spec = importlib.util.spec_from_file_location("signup_deploy_roles", _ROLES_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


roles = _load_roles()
Program = roles.Program
ROLES = roles.load()
# Consuming role -> (variable holding its health port, default port), as the harness reads it.
CONSUMERS: dict[str, tuple[str, int]] = {
    r.name: (r.port_env, r.port) for r in ROLES if r.scaling == "consumer"
}
HEALTH_ENDPOINT = tuple(CONSUMERS)


def programs(
    procfile: Mapping[str, str], env: Mapping[str, str], processes: int = 1
) -> list[object]:
    """The harness's programs: ``processes`` per consuming role, numbered from 1 when several.

    ``procfile`` is ignored (the table is the source); kept for the harness's call.
    """
    del procfile
    listed = roles.programs(ROLES, {**env, "CONSUMER_PROCESSES": str(processes), "INSTANCES": "1"})
    found: list[object] = []
    for program in listed:
        instance = int(program.env[roles.INSTANCE_ENV])
        several = program.name != program.role
        found.append(
            roles.Program(
                f"{program.role}-{instance + 1}" if several else program.name,
                program.role,
                program.argv,
                {**program.env, roles.INSTANCE_ENV: str(instance + 1)},
                program.health_port,
            )
        )
    return found


def parent_death_wrapper() -> tuple[str, ...]:
    """``setpriv --pdeathsig TERM --`` where util-linux provides it (Linux), else nothing."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else ()


def _escape(value: str) -> str:
    return value.replace("%", "%%")


def render(
    programs: Sequence[object],
    *,
    root: Path,
    run_dir: Path,
    log_dir: Path,
    console: bool = True,
    wrapper: Sequence[str] = (),
    password: str = "",
) -> str:
    """A supervisord file for the harness's programs, each on the ports the harness chose."""
    socket = _escape(str(run_dir / "supervisor.sock"))
    credentials = ["username=signup", f"password={_escape(password)}"] if password else []
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"directory={_escape(str(root))}",
        f"logfile={_escape(str(log_dir / 'supervisord.log'))}",
        f"pidfile={_escape(str(run_dir / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(log_dir))}",
        "",
        "[unix_http_server]",
        f"file={socket}",
        "chmod=0700",
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
        assert isinstance(program, roles.Program)
        output = "/dev/stdout" if console else str(log_dir / f"{program.name}.log")
        environment = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(program.env.items()))
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={_escape(shlex.join([*wrapper, *program.argv]))}",
            f"directory={_escape(str(root))}",
            "autorestart=true",
            f"startsecs={roles.START_SECONDS}",
            f"startretries={roles.START_RETRIES}",
            f"stopwaitsecs={roles.STOP_WAIT_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(output)}",
            "stdout_logfile_maxbytes=0",
            f"environment={environment}",
        ]
    return "\n".join(lines) + "\n"
