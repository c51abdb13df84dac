"""Running a relay process: the relay loop plus its health port (``/healthz``, ``/readyz``,
``/metrics``), until SIGTERM/SIGINT."""

import threading

import structlog

from signup_shared.messaging.connection import broker_ready
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.process import Check, HealthServer, database_ready, stop_on_signals

log = structlog.get_logger(__name__)


def relay_checks(relay: OutboxRelay, amqp_url: str) -> dict[str, Check]:
    """Ready when the outbox's database answers and the broker accepts a connection."""
    return {"database": database_ready(relay.engine), "broker": broker_ready(amqp_url)}


def run_relay(
    relay: OutboxRelay,
    amqp_url: str,
    host: str,
    port: int,
    stop: threading.Event | None = None,
) -> None:
    """Relay until ``stop`` (default: SIGTERM/SIGINT), serving health and metrics meanwhile."""
    stop = stop or stop_on_signals()
    health = HealthServer(host, port, relay_checks(relay, amqp_url)).start()
    log.info("relay.health_started", health_port=health.port)
    try:
        relay.run(stop)
    finally:
        health.stop()
