"""Glue between the broker runtime (and the sweeper) and the actions of notifications.

The subscription owes the welcome messages in the exactly-once transaction (for a whole batch
of events at once), and delivers what the events still owe after that commit: one notification
per transaction, so a row lock is held only while that one message is sent, several at a time
on a small thread pool so that a slow provider does not serialise everything.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from notifications import actions
from notifications.actions import DeliveryResult, Outcome
from notifications.adapters.email import EmailSender
from notifications.adapters.sms import SmsSender
from signup_shared.db import transaction
from signup_shared.errors import PermanentError
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.handlers import event_handler

log = structlog.get_logger(__name__)


@event_handler("accounts", UserSignedUp)
def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    actions.record_welcome_notifications(session, event)


@on_user_signed_up.batch
def record_welcome_batch(session: Session, events: Sequence[Envelope[Any]]) -> None:
    """All the new events of a batch at once: one INSERT (a failure replays them one by one)."""
    actions.record_welcome_notifications_for(session, events)


@on_user_signed_up.after_commit
def deliver_welcome(
    events: Sequence[Envelope[Any]],
    *,
    sessions: sessionmaker[Session],
    email: EmailSender,
    sms: SmsSender,
    pool: Executor,
) -> dict[uuid.UUID, Exception]:
    """Deliver what the events still owe (also on a redelivery: that is how the broker's retries
    reach a notification whose first sending failed); the error each event's message must
    answer for, by event id."""
    with sessions() as session:
        owed = _pending_for_events(session, [event.id for event in events], persist=False)
    # In the order the broker delivered the events, each event once.
    event_ids = list(dict.fromkeys(event.id for event in events))
    pending = [
        (event_id, notification)
        for event_id in event_ids
        for notification in owed.get(event_id, ())
    ]
    results = pool.map(lambda item: deliver_one(sessions, email, sms, item[1]), pending)
    by_event: dict[uuid.UUID, list[DeliveryResult]] = {}
    for (event_id, _), result in zip(pending, results, strict=True):
        by_event.setdefault(event_id, []).append(result)
    errors = {}
    for event_id, event_results in by_event.items():
        error = first_error(event_results)
        if error is not None:
            errors[event_id] = error
    return errors


SUBSCRIPTIONS = (on_user_signed_up,)


@transaction
def _pending_for_events(
    session: Session, event_ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[uuid.UUID]]:
    return actions.pending_for_events(session, event_ids)


@transaction
def _pending_for_event(session: Session, event_id: uuid.UUID) -> list[uuid.UUID]:
    return actions.pending_for_event(session, event_id)


@transaction
def _stale_pending(session: Session, older_than: datetime, limit: int) -> list[uuid.UUID]:
    return actions.stale_pending(session, older_than, limit)


@transaction
def _deliver(
    session: Session, notification_id: uuid.UUID, email: EmailSender, sms: SmsSender
) -> DeliveryResult:
    return actions.deliver_notification(session, notification_id, email, sms, datetime.now(UTC))


@transaction
def _prune_inbox(session: Session, retention: timedelta) -> int:
    return actions.prune_inbox(session, retention)


def deliver_one(
    sessions: sessionmaker[Session],
    email: EmailSender,
    sms: SmsSender,
    notification_id: uuid.UUID,
) -> DeliveryResult:
    """Deliver one notification in its own transaction; a crash is a result, never raised."""
    try:
        with sessions() as session:
            return _deliver(session, notification_id, email, sms)
    except Exception as exc:
        log.exception("notification.delivery_crashed", notification_id=str(notification_id))
        return DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)


def deliver_each(
    sessions: sessionmaker[Session],
    email: EmailSender,
    sms: SmsSender,
    notification_ids: Iterable[uuid.UUID],
) -> list[DeliveryResult]:
    """Deliver every notification, each in its own transaction; one failure stops none other."""
    return [
        deliver_one(sessions, email, sms, notification_id) for notification_id in notification_ids
    ]


def first_error(results: Iterable[DeliveryResult]) -> Exception | None:
    """The error the broker should see: a retryable one if any (a retry may still help), else
    the permanent one (dead-letter)."""
    errors = [result.error for result in results if result.error is not None]
    retryable = [error for error in errors if not isinstance(error, PermanentError)]
    return next(iter(retryable or errors), None)


def deliver_for_event(
    sessions: sessionmaker[Session], email: EmailSender, sms: SmsSender, event_id: uuid.UUID
) -> list[DeliveryResult]:
    """Deliver what the event still owes; then raise the outcome the broker must act on."""
    with sessions() as session:
        pending = _pending_for_event(session, event_id, persist=False)
    results = deliver_each(sessions, email, sms, pending)
    error = first_error(results)
    if error is not None:
        raise error
    return results


def sweep(
    sessions: sessionmaker[Session],
    email: EmailSender,
    sms: SmsSender,
    *,
    grace: timedelta,
    batch_size: int,
) -> list[DeliveryResult]:
    """Deliver one batch of notifications left pending for longer than ``grace``."""
    with sessions() as session:
        stale = _stale_pending(session, datetime.now(UTC) - grace, batch_size, persist=False)
    results = deliver_each(sessions, email, sms, stale)
    if results:
        counts = {outcome.value: 0 for outcome in Outcome}
        for result in results:
            counts[result.outcome.value] += 1
        log.info("sweep.finished", **counts)
    return results


def prune_inbox(sessions: sessionmaker[Session], retention: timedelta) -> int:
    with sessions() as session:
        return _prune_inbox(session, retention)
