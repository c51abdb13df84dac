"""Wiring: builds the real dependencies of each provisioning process from settings."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from provisioning import consumers, models
from provisioning.adapters.storage import DirectorySpaceStorage, SpaceStorage
from provisioning.settings import ProvisioningSettings
from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.outbox.runner import relay_from_settings

SERVICE = "provisioning"


def queues(settings: ProvisioningSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


def database(settings: ProvisioningSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def storage(settings: ProvisioningSettings) -> DirectorySpaceStorage:
    return DirectorySpaceStorage(settings.spaces_root)


def relay(settings: ProvisioningSettings) -> OutboxRelay:
    engine, _ = database(settings)
    return relay_from_settings(
        settings,
        engine,
        models.OutboxMessage,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval_seconds,
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
