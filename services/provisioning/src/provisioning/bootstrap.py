"""Wiring: builds the real dependencies of each provisioning process from settings."""

import functools
from collections.abc import Callable
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from provisioning import consumers, models
from provisioning.adapters.storage import DirectorySpaceStorage, SpaceStorage
from provisioning.settings import ProvisioningSettings
from signup_shared import inbox
from signup_shared.db import open_database, transaction
from signup_shared.events import UserSignedUp
from signup_shared.messaging import topology
from signup_shared.messaging.consumer import ConsumerRuntime, Subscription
from signup_shared.messaging.handlers import exactly_once, session_handler
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.process import HealthServer, database_ready

SERVICE = "provisioning"

log = structlog.get_logger(__name__)


def user_signed_up_queue(settings: ProvisioningSettings) -> ConsumerQueue:
    return topology.consumer_queue(
        SERVICE, "accounts", "user_signed_up", settings.retry_delays, settings.delivery_limit
    )


def queues(settings: ProvisioningSettings) -> list[ConsumerQueue]:
    return [user_signed_up_queue(settings)]


def database(settings: ProvisioningSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def storage(settings: ProvisioningSettings) -> DirectorySpaceStorage:
    return DirectorySpaceStorage(settings.spaces_root)


def relay(settings: ProvisioningSettings) -> OutboxRelay:
    engine, _ = database(settings)
    publisher = ConfirmingPublisher(settings.amqp_url, settings.confirm_timeout,
                                    settings.amqp_heartbeat)
    return OutboxRelay(
        engine,
        models.OutboxMessage,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
        retention=timedelta(hours=settings.outbox_retention_hours),
    )


def user_signed_up_handler(
    queue: ConsumerQueue, space_storage: SpaceStorage
) -> Callable[..., None]:
    """The transactional handler: inbox claim + provisioning, committed together."""
    step = functools.partial(consumers.on_user_signed_up, storage=space_storage)
    return exactly_once(queue.name, models.InboxMessage, step)


def consumer(
    settings: ProvisioningSettings, sessions: sessionmaker[Session], space_storage: SpaceStorage
) -> ConsumerRuntime:
    queue = user_signed_up_queue(settings)
    handle = user_signed_up_handler(queue, space_storage)
    return ConsumerRuntime(
        SERVICE,
        settings.amqp_url,
        [Subscription(queue, (UserSignedUp,), session_handler(sessions, handle))],
        prefetch=settings.prefetch_count,
        heartbeat=settings.amqp_heartbeat,
        confirm_timeout=settings.confirm_timeout,
    )


def health_server(
    settings: ProvisioningSettings, engine: Engine, runtime: ConsumerRuntime
) -> HealthServer:
    checks = {"database": database_ready(engine), "broker": lambda: runtime.connected}
    return HealthServer(settings.http_host, settings.http_port, checks)


@transaction
def prune_inbox(session: Session, retention: timedelta) -> int:
    return inbox.prune(session, models.InboxMessage, retention)


def inbox_pruner(
    settings: ProvisioningSettings, sessions: sessionmaker[Session]
) -> Callable[[], int]:
    retention = timedelta(days=settings.inbox_retention_days)

    def prune() -> int:
        with sessions() as session:
            pruned = int(prune_inbox(session, retention))
        if pruned:
            log.info("inbox.pruned", rows=pruned)
        return pruned

    return prune

