"""Wiring: builds the real dependencies of each provisioning process from settings."""

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from provisioning import consumers, models
from provisioning.adapters.storage import DirectorySpaceStorage, SpaceStorage
from provisioning.settings import ProvisioningSettings
from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay

SERVICE = "provisioning"


def queues(settings: ProvisioningSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: ProvisioningSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def storage(settings: ProvisioningSettings) -> DirectorySpaceStorage:
    return DirectorySpaceStorage(settings.spaces_root)


def relay(settings: ProvisioningSettings) -> OutboxRelay:
    engine, _ = database(settings)
    publisher = ConfirmingPublisher(
        settings.amqp_url, settings.confirm_timeout, settings.amqp_heartbeat
    )
    return OutboxRelay(
        engine,
        models.OutboxMessage,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval_seconds,
        retention=timedelta(hours=settings.outbox_retention_hours),
    )


def consumer_worker(
    settings: ProvisioningSettings, space_storage: SpaceStorage | None = None
) -> worker.ConsumerWorker:
    engine, sessions = database(settings)
    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        engine,
        sessions,
        models.InboxMessage,
        health_port=settings.consumer_health_port,
        dependencies={"storage": space_storage or storage(settings)},
        inbox_prune_interval=settings.inbox_prune_interval_seconds,
    )
