"""Wiring: builds the real dependencies of each stats process from settings."""

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from signup_shared.db import open_database
from signup_shared.events import EventData, SpaceProvisioned, UserSignedUp
from signup_shared.messaging import topology
from signup_shared.messaging.consumer import ConsumerRuntime, Subscription
from signup_shared.messaging.handlers import Step, exactly_once, session_handler
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.periodic import every
from signup_shared.process import HealthServer, database_ready
from stats import consumers, models
from stats.settings import StatsSettings

SERVICE = "stats"


def _queue(settings: StatsSettings, producer: str, event: str) -> ConsumerQueue:
    return topology.consumer_queue(
        SERVICE, producer, event, settings.retry_delays, settings.delivery_limit
    )


def user_signed_up_queue(settings: StatsSettings) -> ConsumerQueue:
    return _queue(settings, "accounts", "user_signed_up")


def space_provisioned_queue(settings: StatsSettings) -> ConsumerQueue:
    return _queue(settings, "provisioning", "space_provisioned")


def queues(settings: StatsSettings) -> list[ConsumerQueue]:
    return [user_signed_up_queue(settings), space_provisioned_queue(settings)]


def database(settings: StatsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def _subscription(
    sessions: sessionmaker[Session], queue: ConsumerQueue, event: type[EventData], step: Step
) -> Subscription:
    handle = exactly_once(queue.name, models.InboxMessage, step)
    return Subscription(queue, (event,), session_handler(sessions, handle))


def subscriptions(settings: StatsSettings, sessions: sessionmaker[Session]) -> list[Subscription]:
    return [
        _subscription(sessions, user_signed_up_queue(settings), UserSignedUp,
                      consumers.on_user_signed_up),
        _subscription(sessions, space_provisioned_queue(settings), SpaceProvisioned,
                      consumers.on_space_provisioned),
    ]


def consumer(settings: StatsSettings, sessions: sessionmaker[Session]) -> ConsumerRuntime:
    return ConsumerRuntime(
        SERVICE,
        settings.amqp_url,
        subscriptions(settings, sessions),
        prefetch=settings.prefetch_count,
        heartbeat=settings.amqp_heartbeat,
        confirm_timeout=settings.confirm_timeout,
    )


def health_server(
    settings: StatsSettings, engine: Engine, runtime: ConsumerRuntime
) -> HealthServer:
    checks = {"database": database_ready(engine), "broker": lambda: runtime.connected}
    return HealthServer(settings.http_host, settings.consumer_http_port, checks)


def inbox_pruner(settings: StatsSettings, sessions: sessionmaker[Session]) -> Callable[[], int]:
    retention = timedelta(days=settings.inbox_retention_days)

    def prune() -> int:
        with sessions() as session:
            return consumers.prune_inbox(session, retention)

    return prune


def run_consumer(settings: StatsSettings, stop: threading.Event) -> None:
    """The consumer process: the runtime, its health endpoint and the inbox pruning job."""
    engine, sessions = database(settings)
    runtime = consumer(settings, sessions)
    health = health_server(settings, engine, runtime).start()
    every(settings.inbox_prune_interval_seconds, inbox_pruner(settings, sessions), stop,
          name="inbox-prune")
    try:
        runtime.run(stop)
    finally:
        health.stop()
        engine.dispose()

