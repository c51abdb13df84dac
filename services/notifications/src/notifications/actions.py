"""Business rules of notifications: owe the welcome messages, then deliver what is owed.

1. ``owe_welcome`` runs in the consumer's transaction (with the inbox claim): it writes the
   messages a new user is owed, one row per channel. Nothing is sent there.
2. After that commit, ``deliver`` sends one owed message in a transaction of its own: the row
   lock it takes keeps any second deliverer away while the provider is called, and the outcome
   (sent, retry later, failed for good) is recorded on the row.

A user is owed one welcome, decided by the first event for the user (``models.WelcomedUser``);
later events for the same user owe nothing.
"""

import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from notifications import erasure_models, models, templates
from notifications.adapters.email_message import Email
from notifications.adapters.sms import Sms, SmsSender
from notifications.adapters.smtp import EmailSender
from notifications.models import Channel as Channel
from notifications.models import Owed
from notifications.models import PendingRef as PendingRef
from signup_contracts import UserErased, UserErasureRequested, is_redacted
from signup_contracts.text_rules import DEFAULT_LOCALE
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, UserSignedUp

PRODUCER = "notifications"

log = structlog.get_logger(__name__)


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRY_LATER = "retry_later"
    FAILED = "failed"
    SKIPPED = "skipped"


class StillDeliveringError(TransientError):
    """The provider had not answered when the broker needed an answer; the delivery goes on
    (within its own deadline) and the event's retry waits for it."""


@dataclass(frozen=True)
class DeliveryResult:
    notification_id: uuid.UUID
    outcome: Outcome
    error: Exception | None = None


@dataclass(frozen=True)
class Senders:
    """The providers of each channel."""

    email: EmailSender
    sms: SmsSender


def welcome_rows(event: Envelope[UserSignedUp], now: datetime) -> list[dict[str, Any]]:
    """The welcome email, and the welcome SMS if the user gave a phone number."""
    data = event.data
    owed = [(Channel.EMAIL, str(data.email), templates.WELCOME_EMAIL)]
    if data.phone is not None:
        owed.append((Channel.SMS, data.phone, templates.WELCOME_SMS))
    # the locale picks the language of the welcome (templates.i18n); v1 has none: English
    template_data = {
        "full_name": data.full_name,
        "plan": data.plan,
        "locale": getattr(data, "locale", DEFAULT_LOCALE),
    }
    return [
        models.notification_row(
            user_id=data.user_id,
            channel=channel,
            recipient=recipient,
            template=template,
            template_data=template_data,
            causing_event_id=event.id,
            now=now,
        )
        for channel, recipient, template in owed
    ]


def owe_welcome(session: Session, events: Sequence[Envelope[UserSignedUp]], now: datetime) -> None:
    """Owe each new user their welcome messages, in the caller's transaction.

    The first ``UserSignedUp`` for a user decides the welcome (which channels, which address):
    it claims the user (``models.claim_welcomes``) and only a claimed user is owed anything. A
    later event for the same user, in this batch or any later one, is a duplicate or a forgery
    and owes nothing, even if it brings a phone number the first did not.
    """
    first: dict[uuid.UUID, Envelope[UserSignedUp]] = {}
    for event in events:
        first.setdefault(event.data.user_id, event)
    # Redacted: the user was erased before the event went out; nothing is owed to anyone.
    first = {user_id: event for user_id, event in first.items() if not is_redacted(event.data)}
    claimed = models.claim_welcomes(
        session, {user_id: event.id for user_id, event in first.items()}, now
    )
    rows = [
        row
        for user_id, event in first.items()
        if user_id in claimed
        for row in welcome_rows(event, now)
    ]
    models.add_notifications(session, rows)
    log.debug("notifications.owed", events=len(events), users=len(claimed), notifications=len(rows))


def pending_of_events(session: Session, event_ids: Sequence[uuid.UUID]) -> list[PendingRef]:
    """What these events still owe (a redelivered event: what its first delivery left)."""
    return models.pending_of_events(session, list(dict.fromkeys(event_ids)))


def stale_pending(session: Session, older_than: datetime, limit: int) -> list[PendingRef]:
    """What was left pending since ``older_than`` (a crash, or retries the broker gave up on)."""
    return models.stale_pending(session, older_than, limit)


def deliver(
    session: Session, notification_id: uuid.UUID, senders: Senders, now: datetime
) -> DeliveryResult:
    """Send one pending notification and record the outcome; never raises a provider's error.

    A row locked by another deliverer, or no longer pending, is skipped. The caller commits even
    when sending failed: the attempt and its error are part of the story. An unexpected error
    propagates, so the caller rolls back and the row stays as it was.
    """
    owed = models.lock_pending(session, notification_id)
    if owed is None:
        log.debug("notification.skipped", notification_id=str(notification_id))
        return DeliveryResult(notification_id, Outcome.SKIPPED)
    try:
        provider_message_id = send(owed, senders)
    except PermanentError as exc:
        models.record_failed(session, owed, str(exc), now)
        _log_failure("notification.failed", owed, exc)
        return DeliveryResult(notification_id, Outcome.FAILED, exc)
    except TransientError as exc:
        models.record_retry_later(session, owed, str(exc), now)
        _log_failure("notification.retry_later", owed, exc)
        return DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)
    models.record_sent(session, owed, provider_message_id, now)
    log.debug(
        "notification.sent",
        notification_id=str(owed.id),
        channel=owed.channel.value,
        attempts=owed.attempts,
    )
    return DeliveryResult(notification_id, Outcome.SENT)


def send(owed: Owed, senders: Senders) -> str:
    """Render the owed message and hand it to its channel's provider; the provider's id."""
    if owed.channel is Channel.EMAIL:
        content = templates.render_email(owed.template, owed.template_data)
        return senders.email.send(
            Email(
                owed.id,
                owed.recipient,
                content.subject,
                content.text,
                content.html,
                content.language,
            )
        )
    sms = templates.render_sms(owed.template, owed.template_data)
    if sms.segments.parts > 1:
        log.info(
            "notification.sms_parts",
            notification_id=str(owed.id),
            parts=sms.segments.parts,
            encoding=sms.segments.encoding,
        )
    return senders.sms.send(Sms(owed.id, owed.recipient, sms.body))


def _log_failure(event: str, owed: Owed, exc: Exception) -> None:
    log.warning(
        event,
        notification_id=str(owed.id),
        channel=owed.channel.value,
        attempts=owed.attempts,
        error=str(exc),
    )


def errors_by_event(
    pending: Iterable[PendingRef], results: Mapping[uuid.UUID, DeliveryResult]
) -> dict[uuid.UUID, Exception]:
    """The error each event's message must answer for: a retryable one if any of its
    notifications has one (a retry may still help), else a permanent one (dead-letter)."""
    by_event: dict[uuid.UUID, list[Exception]] = {}
    for ref in pending:
        result = results.get(ref.id)
        if result is None:
            error: Exception | None = StillDeliveringError(f"{ref.channel.value} still sending")
        else:
            error = result.error
        if error is not None:
            by_event.setdefault(ref.event_id, []).append(error)
    return {event_id: first_error(errors) for event_id, errors in by_event.items()}


def first_error(errors: Sequence[Exception]) -> Exception:
    retryable = [error for error in errors if not isinstance(error, PermanentError)]
    return (retryable or list(errors))[0]


def pending_by_channel(session: Session, now: datetime) -> dict[Channel, tuple[int, float]]:
    """Per channel: how many notifications wait, and the age in seconds of the oldest."""
    waiting = models.pending_by_channel(session)
    return {
        channel: (count, max(0.0, (now - oldest).total_seconds()))
        for channel, (count, oldest) in waiting.items()
    }


def erase_user(
    session: Session, event: Envelope[UserErasureRequested], now: datetime
) -> Envelope[UserErased] | None:
    """Erase the user's addresses, names and numbers here, and confirm with ``UserErased``.

    Deletes every notification of the user (a pending one is never sent) and takes their
    welcome claim, so a ``UserSignedUp`` for them arriving later owes nothing. The confirmation
    goes to the outbox in the same transaction; a second request for an erased user (a replay)
    erases again and confirms nothing new (None).
    """
    user_id = event.data.user_id
    new, deleted = erasure_models.erase_user(session, user_id, event.id, now)
    log.info("user.erased", user_id=str(user_id), notifications_deleted=deleted, first=new)
    if not new:
        return None
    confirmation = event.caused(
        UserErased(user_id=user_id, holder=PRODUCER, erased_at=now), producer=PRODUCER
    )
    erasure_models.add_to_outbox(session, confirmation)
    return confirmation
