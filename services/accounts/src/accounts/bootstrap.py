"""Wiring: builds the real dependencies of each accounts process from settings."""

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from accounts import consumers, models
from accounts.settings import AccountsSettings
from signup_shared.db import open_database
from signup_shared.events import SpaceProvisioned
from signup_shared.messaging import topology
from signup_shared.messaging.consumer import ConsumerRuntime, Subscription
from signup_shared.messaging.handlers import exactly_once, session_handler
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay

SERVICE = "accounts"


def space_provisioned_queue(settings: AccountsSettings) -> ConsumerQueue:
    return topology.consumer_queue(
        SERVICE, "provisioning", "space_provisioned", settings.retry_delays, settings.delivery_limit
    )


def queues(settings: AccountsSettings) -> list[ConsumerQueue]:
    return [space_provisioned_queue(settings)]


def database(settings: AccountsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def relay(settings: AccountsSettings) -> OutboxRelay:
    engine, _ = database(settings)
    publisher = ConfirmingPublisher(
        settings.amqp_url, settings.confirm_timeout, settings.amqp_heartbeat
    )
    return OutboxRelay(
        engine,
        models.OutboxMessage,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
        retention=timedelta(hours=settings.outbox_retention_hours),
    )


def consumer(settings: AccountsSettings) -> ConsumerRuntime:
    _, sessions = database(settings)
    queue = space_provisioned_queue(settings)
    handle = exactly_once(queue.name, models.InboxMessage, consumers.on_space_provisioned)
    return ConsumerRuntime(
        SERVICE,
        settings.amqp_url,
        [Subscription(queue, (SpaceProvisioned,), session_handler(sessions, handle))],
        prefetch=settings.prefetch_count,
        heartbeat=settings.amqp_heartbeat,
        confirm_timeout=settings.confirm_timeout,
    )

