"""Running a relay: built from a service's settings, and as a process of its own (the relay
loop plus its health port: ``/healthz``, ``/readyz``, ``/metrics``) until SIGTERM/SIGINT."""

import threading
from datetime import timedelta

import structlog
from sqlalchemy import Engine

from signup_shared.messaging.connection import broker_ready
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.outbox.model import OutboxMixin
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.process import Check, HealthServer, database_ready, stop_on_signals
from signup_shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


def relay_from_settings(
    settings: ServiceSettings,
    engine: Engine,
    model: type[OutboxMixin],
    *,
    batch_size: int,
    poll_interval: float,
    service: str | None = None,
) -> OutboxRelay:
    """The relay of ``model``'s outbox, publishing with confirms as the service's broker user,
    keeping sent rows ``outbox_retention_hours``."""
    publisher = ConfirmingPublisher(
        settings.amqp_url, settings.confirm_timeout, settings.amqp_heartbeat
    )
    return OutboxRelay(
        engine,
        model,
        publisher,
        batch_size=batch_size,
        poll_interval=poll_interval,
        retention=timedelta(hours=settings.outbox_retention_hours),
        service=service,
    )


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
