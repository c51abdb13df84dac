"""Wiring: builds the real dependencies of each stats process from settings."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue
from stats import consumers, models
from stats.settings import StatsSettings

SERVICE = "stats"


def queues(settings: StatsSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: StatsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def consumer_worker(settings: StatsSettings) -> worker.ConsumerWorker:
    engine, sessions = database(settings)
    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        engine,
        sessions,
        models.InboxMessage,
        health_port=settings.consumer_health_port,
        inbox_prune_interval=settings.inbox_prune_interval_seconds,
    )
