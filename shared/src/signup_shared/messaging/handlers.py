"""Builds consumer handlers: one transaction holding the inbox claims and the action's effects.

Per message (``exactly_once`` + ``session_handler``) or per batch (``batch_exactly_once`` +
``session_batch_handler``): the batch form claims every event id in one statement, runs the step
for the new events only (or one batch-aware step for all of them) and commits once. Work that
cannot join the transaction (sending an email) runs after the commit (``after_commit``) and
reports, per event, what failed, so that each message keeps its own retry and dead-letter path.
"""

import functools
import inspect
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import inbox, tracing
from signup_shared.db import transaction
from signup_shared.events import Envelope, EventData, event_name
from signup_shared.messaging import topology
from signup_shared.messaging.consumer import BatchHandler, Handler, Subscription
from signup_shared.messaging.queue_metrics import for_queue
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings

log = structlog.get_logger(__name__)
R = TypeVar("R")

Step = Callable[[Session, Envelope[Any]], None]
BatchStep = Callable[[Session, Sequence[Envelope[Any]]], None]
AfterCommit = Callable[[Sequence[Envelope[Any]]], Mapping[uuid.UUID, BaseException]]
"""Runs after the commit for every event of the batch (new or redelivered); returns the errors
of the events whose work failed, by event id."""


def exactly_once(
    consumer: str, inbox_model: type[inbox.InboxMixin], step: Step
) -> Callable[..., None]:
    """``step`` runs only for events ``consumer`` has not handled yet, in the caller's transaction.

    The returned function is transactional: ``persist`` (see ``signup_shared.db.transaction``)
    decides whether it commits, rolls back or leaves the transaction open.
    """
    duplicates = for_queue(consumer).duplicates

    @transaction
    def handle(session: Session, envelope: Envelope[Any]) -> None:
        if not inbox.claim(session, inbox_model, consumer, envelope.id):
            log.debug("message.duplicate", consumer=consumer)
            duplicates.inc()  # nothing else happens in this transaction: counted already
            return
        step(session, envelope)

    return handle


def unique(envelopes: Sequence[Envelope[Any]]) -> list[Envelope[Any]]:
    """The envelopes with each event id once (the first seen), in order."""
    first: dict[uuid.UUID, Envelope[Any]] = {}
    for envelope in envelopes:
        first.setdefault(envelope.id, envelope)
    return list(first.values())


def batch_exactly_once(
    consumer: str,
    inbox_model: type[inbox.InboxMixin],
    step: Step,
    batch_step: BatchStep | None = None,
) -> Callable[..., list[Envelope[Any]]]:
    """Claim every event in one statement; run ``batch_step`` (or ``step`` for each) on the new.

    Transactional like ``exactly_once``; returns the events that were new.
    """

    @transaction
    def handle(session: Session, envelopes: Sequence[Envelope[Any]]) -> list[Envelope[Any]]:
        events = unique(envelopes)
        new_ids = inbox.claim_many(session, inbox_model, consumer, [e.id for e in events])
        new = [event for event in events if event.id in new_ids]
        if new and batch_step is not None:
            batch_step(session, new)
        elif new:
            for event in new:
                with tracing.handling(event.id, f"handle {event.type}"):
                    step(session, event)
        if len(new) < len(envelopes):
            log.debug("batch.duplicates", consumer=consumer, count=len(envelopes) - len(new))
        return new

    duplicates = for_queue(consumer).duplicates

    @functools.wraps(handle)
    def counted(
        session: Session, envelopes: Sequence[Envelope[Any]], **options: Any
    ) -> list[Envelope[Any]]:
        """Duplicates are counted once the batch committed (a batch that fails is handled
        again one message at a time, which counts them then)."""
        new = handle(session, envelopes, **options)
        if len(new) < len(envelopes):
            duplicates.inc(len(envelopes) - len(new))
        return new

    return counted


def session_handler(
    sessions: sessionmaker[Session],
    handle: Callable[..., None],
    after_commit: AfterCommit | None = None,
) -> Handler:
    """Give each message its own session and commit it (the handler's default ``persist``);
    then run ``after_commit`` for it and raise its error, if any."""

    def run(envelope: Envelope[Any]) -> None:
        with sessions() as session:
            handle(session, envelope)
        if after_commit is not None:
            errors = after_commit([envelope])
            if errors:
                raise next(iter(errors.values()))

    return run


def session_batch_handler(
    sessions: sessionmaker[Session],
    handle: Callable[..., list[Envelope[Any]]],
    after_commit: AfterCommit | None = None,
) -> BatchHandler:
    """One session and one commit for the whole batch; then ``after_commit`` for all of it."""

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

    def queue(self, service: str, settings: ServiceSettings) -> ConsumerQueue:
        """``<service>.<event_name>``, bound to ``<producer>.<event_name>``."""
        return topology.consumer_queue(
            service,
            self.producer,
            self.event_name,
            settings.retry_delays,
            settings.delivery_limit,
        )

    def subscription(
        self,
        queue: ConsumerQueue,
        sessions: sessionmaker[Session],
        inbox_model: type[inbox.InboxMixin],
        dependencies: Mapping[str, object] | None = None,
    ) -> Subscription:
        """The runtime's subscription: transactions, inbox and dependencies bound in."""
        deps = dependencies or {}
        step = _inject(self.step, deps)
        batch_step = _inject(self.batch_step, deps) if self.batch_step else None
        after = _inject(self.after_commit_step, deps) if self.after_commit_step else None
        one = exactly_once(queue.name, inbox_model, step)
        many = batch_exactly_once(queue.name, inbox_model, step, batch_step)
        return Subscription(
            queue,
            self.events,
            session_handler(sessions, one, after),
            session_batch_handler(sessions, many, after),
        )


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
