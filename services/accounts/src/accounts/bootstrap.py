"""Wiring: builds the real dependencies of each accounts process from settings."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accounts import consumers, models
from accounts.settings import AccountsSettings
from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.outbox.runner import relay_from_settings

SERVICE = "accounts"


def queues(settings: AccountsSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: AccountsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def relay(settings: AccountsSettings) -> OutboxRelay:
    engine, _ = database(settings)
    return relay_from_settings(
        settings,
        engine,
        models.OutboxMessage,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval_seconds,
    )


def consumer_worker(settings: AccountsSettings) -> worker.ConsumerWorker:
    engine, sessions = database(settings)
    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        engine,
        sessions,
        models.InboxMessage,
        health_port=settings.consumer_health_port,
        dependencies={"erasure_holders": tuple(settings.erasure_holders)},
        jobs=[
            worker.Job(
                "accounts.erasure_age",
                settings.erasure_age_probe_interval_seconds,
                consumers.erasure_age_probe(sessions, settings.erasure_deadline_seconds),
            )
        ],
    )
