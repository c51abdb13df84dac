"""Wiring: builds the real dependencies of each stats process from settings."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.outbox.runner import relay_from_settings
from stats import consumers, models
from stats.settings import StatsSettings

SERVICE = "stats"


def queues(settings: StatsSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: StatsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def consumer_worker(settings: StatsSettings) -> worker.ConsumerWorker:
    engine, sessions = database(settings)
    relay = erasure_relay(settings, engine)
    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        engine,
        sessions,
        models.InboxMessage,
        health_port=settings.consumer_health_port,
        inbox_prune_interval=settings.inbox_prune_interval_seconds,
        jobs=[worker.Job(f"{SERVICE}.prune_outbox", 3600.0, relay.prune)],
        loops=[worker.Loop(f"{SERVICE}.relay_erasures", relay.follow)],
        on_close=relay.close,
    )


def erasure_relay(settings: StatsSettings, engine: Engine) -> OutboxRelay:
    """The relay of the ``UserErased`` outbox, run in the consumer process (woken at commit,
    a safety poll every ``erasure_relay_interval_seconds``): erasures are rare, so no relay
    process of its own."""
    return relay_from_settings(
        settings,
        engine,
        models.OutboxMessage,
        batch_size=100,
        poll_interval=settings.erasure_relay_interval_seconds,
        service=SERVICE,
    )
