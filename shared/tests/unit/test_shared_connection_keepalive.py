"""Keeping a quiet connection alive: service it without blocking, from a small timer thread."""

import threading
from typing import Any

import pytest

from signup_shared.messaging.connection import KeepAlive, service_idle


class FakeConnection:
    def __init__(self, waiting: int, dead: bool = False) -> None:
        self.waiting = waiting
        self.dead = dead
        self.calls: list[Any] = []

    def drain_events(self, timeout: float | None = None) -> None:
        self.calls.append(("drain", timeout))
        if self.dead:
            raise ConnectionResetError(104, "reset by peer")
        if not self.waiting:
            raise TimeoutError
        self.waiting -= 1

    def heartbeat_check(self) -> None:
        self.calls.append("heartbeat")


def test_servicing_reads_what_arrived_without_waiting_then_checks_the_heartbeat() -> None:
    connection = FakeConnection(waiting=2)
    service_idle(connection)  # type: ignore[arg-type]
    assert connection.calls == [("drain", 0), ("drain", 0), ("drain", 0), "heartbeat"]


def test_a_dead_connection_raises_for_the_owner_to_replace_it() -> None:
    with pytest.raises(ConnectionResetError):
        service_idle(FakeConnection(waiting=0, dead=True))  # type: ignore[arg-type]


class Ticks:
    """Stands in for the stop event: ``wait`` says "not stopped" ``count`` times, then stops."""

    def __init__(self, count: int) -> None:
        self.count = count

    def wait(self, timeout: float) -> bool:
        self.count -= 1
        return self.count < 0


def test_the_timer_ticks_every_interval_and_outlives_a_failed_tick() -> None:
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("one bad tick")

    keepalive = KeepAlive(tick, 5.0, "test-keepalive")
    keepalive._stop = Ticks(3)  # type: ignore[assignment]
    keepalive._run()
    assert ticks == [0, 1, 2]


def test_stopping_ends_the_thread_at_once() -> None:
    ticked = threading.Event()
    keepalive = KeepAlive(ticked.set, 60.0, "test-keepalive").start()
    keepalive.stop()
    assert not keepalive._thread.is_alive()
    assert not ticked.is_set()


def test_the_interval_has_a_floor() -> None:
    assert KeepAlive(lambda: None, 0.0, "floor").interval == 0.1
