"""The one runner of every consuming process: subscriptions, health, inbox pruning, graceful stop.

A service declares its subscriptions next to their handlers (``@event_handler`` in its
``consumers.py``) and its bootstrap calls ``run_worker`` with them:

    run_worker(ConsumerWorker(SERVICE, settings, consumers.SUBSCRIPTIONS, engine, sessions,
                              models.InboxMessage, health_port=settings.http_port))

which builds one queue per declaration (``<service>.<event_name>``), the consumer runtime,
``/healthz`` and ``/readyz`` (database reachable, broker connected, handler thread alive), the
inbox pruning job and any extra periodic jobs, then consumes until SIGTERM/SIGINT.
"""

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import inbox
from signup_shared.db import transaction
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.handlers import EventHandler
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.periodic import every
from signup_shared.process import Check, HealthServer, database_ready, stop_on_signals
from signup_shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

DEFAULT_INBOX_PRUNE_INTERVAL = 3600.0


@dataclass(frozen=True)
class Job:
    """Background work the worker process runs every ``interval`` seconds (e.g. a sweeper)."""

    name: str
    interval: float
    run: Callable[[], object]


def queues(
    service: str, settings: ServiceSettings, handlers: Sequence[EventHandler]
) -> list[ConsumerQueue]:
    """The queues of the declared subscriptions (what ``<service> topology`` declares)."""
    return [handler.queue(service, settings) for handler in handlers]


@transaction
def _prune(session: Session, model: type[inbox.InboxMixin], retention: timedelta) -> int:
    return inbox.prune(session, model, retention)


def inbox_pruner(
    sessions: sessionmaker[Session], model: type[inbox.InboxMixin], retention: timedelta
) -> Callable[[], int]:
    """Forget handled event ids older than ``retention``, in a transaction of its own."""

    def prune() -> int:
        with sessions() as session:
            pruned = int(_prune(session, model, retention))
        if pruned:
            log.info("inbox.pruned", rows=pruned)
        return pruned

    return prune


@dataclass
class ConsumerWorker:
    """What a consuming process is made of; ``run_worker`` runs it."""

    service: str
    settings: ServiceSettings
    handlers: Sequence[EventHandler]
    engine: Engine
    sessions: sessionmaker[Session]
    inbox_model: type[inbox.InboxMixin]
    health_port: int
    dependencies: Mapping[str, object] = field(default_factory=dict)
    jobs: Sequence[Job] = ()
    inbox_prune_interval: float = DEFAULT_INBOX_PRUNE_INTERVAL
    on_close: Callable[[], None] | None = None

    def subscriptions(self) -> list[Subscription]:
        return [
            handler.subscription(
                handler.queue(self.service, self.settings),
                self.sessions,
                self.inbox_model,
                self.dependencies,
            )
            for handler in self.handlers
        ]

    def runtime(self) -> ConsumerRuntime:
        settings = self.settings
        return ConsumerRuntime(
            self.service,
            settings.amqp_url,
            self.subscriptions(),
            prefetch=settings.prefetch_count,
            heartbeat=settings.amqp_heartbeat,
            confirm_timeout=settings.confirm_timeout,
            batch_size=settings.consumer_batch_size,
        )

    def all_jobs(self) -> list[Job]:
        retention = timedelta(days=self.settings.inbox_retention_days)
        prune = inbox_pruner(self.sessions, self.inbox_model, retention)
        return [Job(f"{self.service}.prune_inbox", self.inbox_prune_interval, prune), *self.jobs]


def health_checks(engine: Engine, runtime: ConsumerRuntime) -> dict[str, Check]:
    """Ready when the database answers, the broker is connected and the handler thread lives."""
    return {
        "database": database_ready(engine),
        "broker": lambda: runtime.connected,
        "worker": lambda: runtime.worker_alive,
    }


def run_worker(worker: ConsumerWorker, stop: threading.Event | None = None) -> None:
    """Consume until ``stop`` (default: SIGTERM/SIGINT); then finish in-flight work and close."""
    stop = stop or stop_on_signals()
    runtime = worker.runtime()
    health = HealthServer(
        worker.settings.http_host, worker.health_port, health_checks(worker.engine, runtime)
    ).start()
    threads = [every(job.interval, job.run, stop, job.name) for job in worker.all_jobs()]
    log.info(
        "worker.started",
        queues=[s.queue.name for s in runtime.subscriptions],
        health_port=health.port,
        batch_size=runtime.batch_size,
    )
    try:
        runtime.run(stop)
    finally:
        stop.set()
        health.stop()
        for thread in threads:
            thread.join(timeout=30)
        try:
            if worker.on_close is not None:
                worker.on_close()
        finally:
            worker.engine.dispose()
