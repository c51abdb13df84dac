"""Waiting for a stack: every process ready (``/readyz`` of each web, relay and consumer
process, the SMS sink's ``/healthz``), none exited; ``wait_until`` for any other condition."""

import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from platform_harness.programs import PORT_SETTINGS, supervisor_config


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


class Readiness:
    """The part of ``Stack`` that tells whether its processes run and answer."""

    ports: dict[str, int]
    programs: dict[str, Any]
    held: tuple[str, ...]
    supervised: bool
    supervisor: subprocess.Popen[bytes] | None
    processes: dict[str, subprocess.Popen[bytes]]
    log: Callable[[str], str]

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
