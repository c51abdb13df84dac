"""The worker runner: readiness follows database, broker and handler thread; stops gracefully."""

import threading
import time
from typing import Any

import httpx
import pytest

from signup_shared.process import HealthServer, readiness
from signup_shared.settings import ServiceSettings
from signup_shared.worker import ConsumerWorker, Job, Loop, run_worker

pytestmark = pytest.mark.integration


class FakeRuntime:
    def __init__(self) -> None:
        self.connected = True
        self.worker_alive = True
        self.subscriptions: list[Any] = []
        self.batch_size = 1
        self.stopped = threading.Event()

    def run(self, stop: threading.Event) -> None:
        stop.wait(10)
        self.stopped.set()


class FakeEngine:
    disposed = False

    def connect(self) -> Any:
        raise ConnectionError("no database in this test")

    def dispose(self) -> None:
        self.disposed = True


def test_the_worker_serves_readiness_runs_its_jobs_and_closes_on_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime, engine, closed, ran = FakeRuntime(), FakeEngine(), [], threading.Event()
    loop_runs: list[str] = []

    def follow(stop: threading.Event) -> None:
        """Fails on its first run; runs again (after a backoff) until the stop."""
        loop_runs.append("run")
        if len(loop_runs) == 1:
            raise RuntimeError("the first run fails")
        stop.wait()
        loop_runs.append("stopped")

    worker: Any = ConsumerWorker(
        "svc",
        ServiceSettings(),
        [],
        engine,
        None,
        None,  # type: ignore[arg-type]
        health_port=0,
        jobs=[Job("tick", 0.01, ran.set)],
        loops=[Loop("follow", follow)],
        inbox_prune_interval=3600,
        on_close=lambda: closed.append(True),
    )
    monkeypatch.setattr(ConsumerWorker, "runtime", lambda _self: runtime)
    ports: list[int] = []
    start = HealthServer.start

    def recording_start(self: HealthServer) -> HealthServer:
        ports.append(self.port)
        return start(self)

    monkeypatch.setattr(HealthServer, "start", recording_start)
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(worker, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not ports and time.monotonic() < deadline:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{ports[0]}/readyz"
        answer = httpx.get(url)
        assert answer.status_code == 503
        assert answer.json()["checks"] == {
            "database": "unavailable",
            "broker": "ok",
            "worker": "ok",
        }
        assert ran.wait(2)
        while len(loop_runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loop_runs == ["run", "run"]  # started again after its failure
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert runtime.stopped.is_set() and closed == [True] and engine.disposed
    assert loop_runs == ["run", "run", "stopped"]  # the loop ended with the process


def test_a_check_that_raises_counts_as_unavailable() -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    assert readiness({"broken": broken, "fine": lambda: True}) == (
        False,
        {"broken": "unavailable", "fine": "ok"},
    )
