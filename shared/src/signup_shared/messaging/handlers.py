"""Declaring subscriptions: ``@event_handler(producer, Event)`` over a step, with ``.batch``,
``.after_commit``, ``.queue(service, settings)`` and ``.subscription(queue, sessions,
inbox_model, dependencies)``, which builds the runtime's handler (``inbox_handler``) with the
step's keyword-only dependencies filled in by name.
"""

import functools
import inspect
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from signup_contracts.amqp import routing_key
from signup_shared import inbox
from signup_shared.db import transaction
from signup_shared.events import Envelope, EventData, event_name
from signup_shared.messaging.inbox_handler import (
    AfterCommit,
    BatchStep,
    InboxHandler,
    InboxModel,
    Step,
    claim_and_step,
    claim_and_step_batch,
    unique,
)
from signup_shared.messaging.subscription import BatchHandler, Handler, Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings

__all__ = [
    "EventHandler",
    "InboxHandler",
    "batch_exactly_once",
    "event_handler",
    "exactly_once",
    "session_batch_handler",
    "session_handler",
    "unique",
]
R = TypeVar("R")


# For callers that compose a handler themselves (tests run a step in a rollback-only
# transaction with ``persist=None``; benchmarks): the same claim-and-step, transactional.
def exactly_once(consumer: str, inbox_model: InboxModel, step: Step) -> Callable[..., None]:
    """``step`` runs only for events ``consumer`` has not handled yet; ``persist`` (see
    ``signup_shared.db.transaction``) decides whether it commits, rolls back or leaves it open."""

    @transaction
    def handle(session: Session, envelope: Envelope[Any]) -> None:
        claim_and_step(session, consumer, inbox_model, step, envelope)

    return handle


def batch_exactly_once(
    consumer: str, inbox_model: InboxModel, step: Step, batch_step: BatchStep | None = None
) -> Callable[..., list[Envelope[Any]]]:
    """Transactional like ``exactly_once``, for a batch; returns the events that were new."""

    @transaction
    def handle(session: Session, envelopes: Sequence[Envelope[Any]]) -> list[Envelope[Any]]:
        events = unique(envelopes)
        return claim_and_step_batch(session, consumer, inbox_model, step, batch_step, events)

    return handle


def session_handler(
    sessions: Callable[[], Session],
    handle: Callable[..., None],
    after_commit: AfterCommit | None = None,
) -> Handler:
    """A runtime ``Handler`` from a transactional ``handle(session, envelope)``."""

    def run(envelope: Envelope[Any]) -> None:
        with sessions() as session:
            handle(session, envelope)
        if after_commit is not None and (errors := after_commit([envelope])):
            raise next(iter(errors.values()))

    return run


def session_batch_handler(
    sessions: Callable[[], Session],
    handle: Callable[..., list[Envelope[Any]]],
    after_commit: AfterCommit | None = None,
) -> BatchHandler:
    """A runtime ``BatchHandler`` from a transactional ``handle(session, envelopes)``."""

    def run(envelopes: Sequence[Envelope[Any]]) -> Mapping[uuid.UUID, BaseException]:
        with sessions() as session:
            handle(session, envelopes)
        return after_commit(unique(envelopes)) if after_commit is not None else {}

    return run


# Declarations ------------------------------------------------------------------------------
F = TypeVar("F", bound=Callable[..., Any])


class EventHandler:
    """One subscription, declared next to its handler: whose events, of which types, and the step.

    ``step(session, event, **dependencies)`` runs in the transaction that claims the event in the
    inbox. Optional: ``batch`` (``(session, events, **dependencies)``), a batch-aware step for all
    new events of a batch at once; ``after_commit`` (``(events, **dependencies)``, returns the
    errors by event id), work that cannot join the transaction. Keyword-only parameters of these
    functions are filled by name from the dependencies the worker is given.

    Calling the declaration calls the step, so it can be tested like the plain function.
    """

    def __init__(
        self, producer: str, events: tuple[type[EventData], ...], step: Callable[..., None]
    ) -> None:
        if not events:
            raise ValueError("a subscription needs at least one event type")
        names = {event_name(event.event_type) for event in events}
        if len(names) != 1:
            raise ValueError(f"one subscription takes one event type (its versions): {names}")
        self.producer = producer
        self.events = events
        self.event_name = names.pop()
        self.step = step
        self.batch_step: Callable[..., None] | None = None
        self.after_commit_step: Callable[..., Mapping[uuid.UUID, BaseException]] | None = None
        functools.update_wrapper(self, step)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.step(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<EventHandler {self.producer}.{self.event_name} -> {self.step.__name__}>"

    def batch(self, batch_step: F) -> F:
        """Decorates the batch-aware form of the step."""
        self.batch_step = batch_step
        return batch_step

    def after_commit(self, after_commit: F) -> F:
        """Decorates what runs after the commit for every event of a batch (new or not)."""
        self.after_commit_step = after_commit
        return after_commit

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions the step accepts, oldest first."""
        return tuple(sorted({event.version for event in self.events}))

    @property
    def version_setting(self) -> str:
        """The settings field that picks the version the queue is bound to (``<SERVICE>_`` +
        its name in capitals in the environment, e.g. ``NOTIFICATIONS_USER_SIGNED_UP_VERSION``)."""
        return f"{self.event_name}_version"

    def read_version(self, settings: ServiceSettings) -> int:
        """The version the service reads: its ``<event_name>_version`` setting, else the newest
        declared. Raises ``ValueError`` naming the setting when the step does not accept it."""
        configured = getattr(settings, self.version_setting, None)
        version = self.versions[-1] if configured is None else int(configured)
        if version not in self.versions:
            prefix = str(settings.model_config.get("env_prefix", ""))
            raise ValueError(
                f"{prefix}{self.version_setting.upper()}={version}: {self!r} reads versions "
                f"{list(self.versions)} only"
            )
        return version

    def queue(self, service: str, settings: ServiceSettings) -> ConsumerQueue:
        """``<service>.<event_name>``, bound to the key of the version the service reads
        (``read_version``); the keys of the other declared versions are to be unbound."""
        version = self.read_version(settings)
        return ConsumerQueue(
            service,
            self.routing_key(version),
            retry_delays_ms=tuple(settings.retry_delays),
            delivery_limit=settings.delivery_limit,
            other_keys=tuple(self.routing_key(v) for v in self.versions if v != version),
        )

    def routing_key(self, version: int) -> str:
        return routing_key(self.producer, self.events[0].event_type, version)

    def subscription(
        self,
        queue: ConsumerQueue,
        sessions: sessionmaker[Session],
        inbox_model: type[inbox.InboxMixin],
        dependencies: Mapping[str, object] | None = None,
    ) -> Subscription:
        """The runtime's subscription: transactions, inbox and dependencies bound in."""
        deps = dependencies or {}
        handler = InboxHandler(
            queue.name,
            sessions,
            inbox_model,
            _inject(self.step, deps),
            _inject(self.batch_step, deps) if self.batch_step else None,
            _inject(self.after_commit_step, deps) if self.after_commit_step else None,
        )
        return handler.subscription(queue, self.events)


def event_handler(
    producer: str, *events: type[EventData]
) -> Callable[[Callable[..., None]], EventHandler]:
    """Declare a subscription: ``@event_handler("accounts", UserSignedUp)`` over its step."""

    def declare(step: Callable[..., None]) -> EventHandler:
        return EventHandler(producer, events, step)

    return declare


def _inject(function: Callable[..., R], dependencies: Mapping[str, object]) -> Callable[..., R]:
    """``function`` with its keyword-only parameters taken from ``dependencies`` (once, now)."""
    wanted = [
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
    ]
    missing = [name for name in wanted if name not in dependencies]
    if missing:
        raise TypeError(f"{function.__qualname__} needs dependencies {missing}")
    if not wanted:
        return function
    return functools.partial(function, **{name: dependencies[name] for name in wanted})
