"""A subscription's handler: one transaction holding the inbox claims and the step's effects.

``InboxHandler.handle(envelope)`` and ``handle_batch(envelopes)`` read top to bottom: open a
session, claim the events in the inbox, run the step for the new ones, commit, then the work
that cannot join the transaction (``after_commit``: sending an email), which reports per event
what failed so that each message keeps its own retry and dead-letter path. A batch claims every
event id in one statement and runs one batch-aware step for the new events (or the step for
each) before its one commit.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from signup_shared import inbox, tracing
from signup_shared.events import Envelope, EventData
from signup_shared.messaging import failures
from signup_shared.messaging.queue_metrics import for_queue
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue

log = structlog.get_logger(__name__)

Step = Callable[[Session, Envelope[Any]], None]
BatchStep = Callable[[Session, Sequence[Envelope[Any]]], None]
AfterCommit = Callable[[Sequence[Envelope[Any]]], Mapping[uuid.UUID, BaseException]]
"""Runs after the commit for every event of the batch (new or redelivered); returns the errors
of the events whose work failed, by event id."""
InboxModel = type[inbox.InboxMixin]


class InboxHandler:
    """Exactly-once handling of one queue's events: what the runtime calls per message/batch."""

    def __init__(
        self,
        consumer: str,
        sessions: Callable[[], Session],
        inbox_model: InboxModel,
        step: Step,
        batch_step: BatchStep | None = None,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.consumer = consumer
        self.sessions = sessions
        self.inbox_model = inbox_model
        self.step = step
        self.batch_step = batch_step
        self.after_commit = after_commit
        self.duplicates = for_queue(consumer).duplicates

    def handle(self, envelope: Envelope[Any]) -> None:
        """One event in its own transaction; raises ``AfterCommitError`` if its after-commit
        work failed (the commit stands)."""
        with self.sessions() as session:
            new = claim_and_step(session, self.consumer, self.inbox_model, self.step, envelope)
            session.commit()
        if not new:
            log.debug("message.duplicate", consumer=self.consumer)
            self.duplicates.inc()
        if self.after_commit is not None:
            errors = self.after_commit([envelope])
            if errors:
                raise failures.AfterCommitError(next(iter(errors.values())))

    def handle_batch(self, envelopes: Sequence[Envelope[Any]]) -> Mapping[uuid.UUID, BaseException]:
        """Every event in one transaction; returns the after-commit errors by event id.

        Duplicates are counted once the batch committed (a batch that fails is handled again
        one message at a time, which counts them then).
        """
        events = unique(envelopes)
        with self.sessions() as session:
            new = claim_and_step_batch(
                session, self.consumer, self.inbox_model, self.step, self.batch_step, events
            )
            session.commit()
        if len(new) < len(envelopes):
            log.debug("batch.duplicates", consumer=self.consumer, count=len(envelopes) - len(new))
            self.duplicates.inc(len(envelopes) - len(new))
        return self.after_commit(events) if self.after_commit is not None else {}

    def subscription(
        self, queue: ConsumerQueue, events: tuple[type[EventData], ...]
    ) -> Subscription:
        return Subscription(queue, events, self.handle, self.handle_batch)


def claim_and_step(
    session: Session, consumer: str, inbox_model: InboxModel, step: Step, envelope: Envelope[Any]
) -> bool:
    """In the caller's transaction: claim the event; run ``step`` if it is new. True if new."""
    if not inbox.claim(session, inbox_model, consumer, envelope.id):
        return False
    step(session, envelope)
    return True


def claim_and_step_batch(
    session: Session,
    consumer: str,
    inbox_model: InboxModel,
    step: Step,
    batch_step: BatchStep | None,
    events: Sequence[Envelope[Any]],
) -> list[Envelope[Any]]:
    """In the caller's transaction: claim every event in one statement, then run ``batch_step``
    on the new ones (or ``step`` on each). Returns the new events."""
    new_ids = inbox.claim_many(session, inbox_model, consumer, [event.id for event in events])
    new = [event for event in events if event.id in new_ids]
    if new and batch_step is not None:
        batch_step(session, new)
    else:
        for event in new:
            with tracing.handling(event.id, f"handle {event.type}"):
                step(session, event)
    return new


def unique(envelopes: Sequence[Envelope[Any]]) -> list[Envelope[Any]]:
    """The envelopes with each event id once (the first seen), in order."""
    first: dict[uuid.UUID, Envelope[Any]] = {}
    for envelope in envelopes:
        first.setdefault(envelope.id, envelope)
    return list(first.values())
