"""The one runner of every consuming process: subscriptions, health, inbox pruning, graceful stop.

A service declares its subscriptions next to their handlers (``@event_handler`` in its
``consumers.py``) and its bootstrap calls ``run_worker`` with them:

    run_worker(ConsumerWorker(SERVICE, settings, consumers.SUBSCRIPTIONS, engine, sessions,
                              models.InboxMessage, health_port=settings.http_port))

which builds one queue per declaration (``<service>.<event_name>``), the consumer runtime,
``/healthz`` and ``/readyz`` (database reachable, broker connected, handler thread alive), the
inbox pruning job, any extra periodic jobs and loops (an outbox relay woken at commit), then
consumes until SIGTERM/SIGINT.

With ``<PREFIX>CATCH_UP_FROM`` set (or ``<service> consume --catch-up-from``), the process first
catches up from the event history (``messaging.catch_up``), retrying after a broker failure,
and then consumes; ``<service> catch-up --from`` catches up and exits.
"""

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import inbox, keys
from signup_shared.backoff import Backoff
from signup_shared.db import transaction
from signup_shared.messaging import failures, history
from signup_shared.messaging.catch_up import CatchUp, CatchUpReport
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.handlers import EventHandler
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.unseal import Unsealer
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


@dataclass(frozen=True)
class Loop:
    """Background work that waits for its own wake-ups until the process stops (e.g. an outbox
    relay woken at commit, ``OutboxRelay.follow``): ``run(stop)`` on a thread of its own."""

    name: str
    run: Callable[[threading.Event], object]


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
    loops: Sequence[Loop] = ()
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
            processor=MessageProcessor(unsealer=Unsealer(key_resolver(settings))),
        )

    def all_jobs(self) -> list[Job]:
        retention = timedelta(days=self.settings.inbox_retention_days)
        prune = inbox_pruner(self.sessions, self.inbox_model, retention)
        return [Job(f"{self.service}.prune_inbox", self.inbox_prune_interval, prune), *self.jobs]


def key_resolver(settings: ServiceSettings) -> keys.KeyResolver:
    """Where the process gets users' data keys to open sealed signups (``<PREFIX>KEYS_*``)."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    api_key = settings.keys_api_key.get_secret_value() if settings.keys_api_key else None
    return keys.resolver(
        f"{prefix}KEYS",
        settings.keys_url,
        api_key,
        settings.keys_api_key_file,
        timeout=settings.keys_timeout_seconds,
        cache_seconds=settings.keys_cache_seconds,
    )


def close_keys(runtime: ConsumerRuntime) -> None:
    """Let go of the keys service's connections (a runtime built elsewhere may have none)."""
    processor = getattr(runtime, "processor", None)
    if isinstance(processor, MessageProcessor):
        processor.unsealer.close()


def health_checks(engine: Engine, runtime: ConsumerRuntime) -> dict[str, Check]:
    """Ready when the database answers, the broker is connected and the handler thread lives."""
    return {
        "database": database_ready(engine),
        "broker": lambda: runtime.connected,
        "worker": lambda: runtime.worker_alive,
    }


def catch_up(
    worker: ConsumerWorker, runtime: ConsumerRuntime, stop: threading.Event
) -> CatchUpReport | None:
    """Catch up from ``settings.catch_up_from`` through the runtime's handlers; a failure of the
    broker or of the runtime starts it again after a backoff (the inbox absorbs what was read
    twice). None if stopped first."""
    settings = worker.settings
    assert settings.catch_up_from is not None
    job = CatchUp(
        worker.service,
        settings.amqp_url,
        runtime.subscriptions,
        history.parse_position(settings.catch_up_from),
        runtime.publisher,
        processor=runtime.processor,
        prefetch=max(settings.prefetch_count, settings.consumer_batch_size),
        batch_size=settings.consumer_batch_size,
        heartbeat=settings.amqp_heartbeat,
        margin=settings.catch_up_margin_seconds,
    )
    backoff = Backoff()
    while not stop.is_set():
        try:
            report = job.run(stop)
        except history.HistoryError:
            raise
        except Exception as exc:
            delay = backoff.next()
            failures.log_failure(log.warning, "catch_up.failed", exc, retry_in=round(delay, 2))
            stop.wait(delay)
            continue
        return report if report.complete else None
    return None


def _start(loop: Loop, stop: threading.Event) -> threading.Thread:
    """``loop`` on a daemon thread until ``stop``; started again (after a backoff) if it fails."""

    def run() -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                loop.run(stop)
            except Exception:
                log.exception("loop.failed", loop=loop.name)
            stop.wait(backoff.next())

    thread = threading.Thread(target=run, name=loop.name, daemon=True)
    thread.start()
    return thread


def run_worker(worker: ConsumerWorker, stop: threading.Event | None = None) -> None:
    """Consume until ``stop`` (default: SIGTERM/SIGINT); then finish in-flight work and close."""
    stop = stop or stop_on_signals()
    runtime = worker.runtime()
    health = HealthServer(
        worker.settings.http_host, worker.health_port, health_checks(worker.engine, runtime)
    ).start()
    threads = [every(job.interval, job.run, stop, job.name) for job in worker.all_jobs()]
    threads += [_start(loop, stop) for loop in worker.loops]
    log.info(
        "worker.started",
        queues=[s.queue.name for s in runtime.subscriptions],
        health_port=health.port,
        batch_size=runtime.batch_size,
    )
    try:
        if worker.settings.catch_up_from:
            catch_up(worker, runtime, stop)
            if worker.settings.catch_up_then_exit:
                stop.set()  # run() then only closes the publisher and the handler thread
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
            close_keys(runtime)
