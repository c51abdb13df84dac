"""Glue between the broker runtime (and the sweeper) and the actions of notifications.

Recording runs in the exactly-once transaction; delivering runs after it committed, one
notification per transaction, so a row lock is held only while that one message is sent.
"""

import uuid
from collections.abc import Iterable
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
from signup_shared.events import Envelope

log = structlog.get_logger(__name__)


def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    actions.record_welcome_notifications(session, event)


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


def deliver_each(
    sessions: sessionmaker[Session],
    email: EmailSender,
    sms: SmsSender,
    notification_ids: Iterable[uuid.UUID],
) -> list[DeliveryResult]:
    """Deliver every notification, each in its own transaction; one failure stops none other."""
    results = []
    for notification_id in notification_ids:
        try:
            with sessions() as session:
                result = _deliver(session, notification_id, email, sms)
        except Exception as exc:
            log.exception("notification.delivery_crashed", notification_id=str(notification_id))
            result = DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)
        results.append(result)
    return results


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
