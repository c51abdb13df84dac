"""``/metrics`` on the health servers: every consumer's, and the relay process's own."""

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from signup_shared.messaging import queue_metrics
from signup_shared.outbox import OutboxMixin
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.outbox.runner import run_relay
from signup_shared.process import HealthServer
from signup_shared.testing import FakePublisher, amqp_url, outbox_database

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with outbox_database("metrics", Base.metadata) as engine:
        yield engine


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_health_server_serves_the_process_metrics_as_prometheus_text() -> None:
    queue_metrics.for_queue("endpoint.q").received.inc(3)
    server = HealthServer("127.0.0.1", 0, {}).start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    finally:
        server.stop()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert found[("signup_messages_received_total", (("queue", "endpoint.q"),))] == 3
    assert ("process_start_time_seconds", ()) in found


def test_the_health_server_serves_several_requests_and_stops_at_once() -> None:
    server = HealthServer("127.0.0.1", 0, {"database": lambda: True}).start()
    try:
        for _ in range(3):
            answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=5)
            assert answer.status_code == 200
    finally:
        asked = time.monotonic()
        server.stop()
    assert time.monotonic() - asked < 1.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=1)


def test_a_relay_process_serves_readiness_and_its_outbox_backlog(engine: Engine) -> None:
    relay = OutboxRelay(engine, Outbox, FakePublisher(), poll_interval=0.1, service="metrics-it")
    port, stop = free_port(), threading.Event()
    thread = threading.Thread(target=run_relay, args=(relay, amqp_url(), "127.0.0.1", port, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the relay never became ready"
            time.sleep(0.1)
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        assert found[("signup_outbox_pending_rows", (("service", "metrics-it"),))] == 0
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
