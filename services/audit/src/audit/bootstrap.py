"""Wiring: builds the real dependencies of the audit consumer from settings."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit import consumers, models
from audit.settings import AuditSettings
from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue

SERVICE = "audit"


def queues(settings: AuditSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: AuditSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def consumer_worker(settings: AuditSettings) -> worker.ConsumerWorker:
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
