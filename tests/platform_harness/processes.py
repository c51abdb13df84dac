"""A stack's processes: started one by one by the harness (each in its own session, its output
in ``var/log/<name>.log``) or all under supervisord as ``make run`` does; signalled, stopped,
found by their ``SIGNUP_STACK`` marker; a service's command run with a program's environment."""

import contextlib
import os
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

from platform_harness.programs import supervisor_config


class Processes:
    """The part of ``Stack`` that starts, finds and stops its processes."""

    name: str
    root: Path
    env: dict[str, str]
    programs: dict[str, Any]
    held: tuple[str, ...]
    supervisor: subprocess.Popen[bytes] | None
    processes: dict[str, subprocess.Popen[bytes]]

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

    def pids(self) -> dict[str, int]:
        """Program name -> pid of every program the harness itself started (not supervised)."""
        return {name: process.pid for name, process in self.processes.items()}

    def kill_pid(self, pid: int) -> None:
        """SIGKILL one process of this stack (refuses a pid that is not one of its own)."""
        if pid not in self.platform_pids():
            raise ValueError(f"{pid} is not a process of stack {self.name}")
        os.kill(pid, signal.SIGKILL)

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

    def log(self, name: str) -> str:
        path = self.root / "var" / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
