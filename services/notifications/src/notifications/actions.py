"""Business rules of notifications: owe the welcome messages, then deliver each one at most once.

Recording happens in the consumer's transaction (with the inbox claim); sending cannot join a
transaction, so it happens afterwards, one notification per transaction: the row lock taken by
``deliver_notification`` keeps any second deliverer away while the provider is being called.
"""

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifications import templates
from notifications.adapters.email import Email, EmailSender
from notifications.adapters.sms import Sms, SmsSender
from notifications.models import (
    MAX_ERROR_LENGTH,
    Channel,
    InboxMessage,
    Notification,
    NotificationStatus,
)
from signup_shared import inbox
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, UserSignedUp

EVENT_CHANNEL_UNIQUE = "uq_notifications_event_channel"

log = structlog.get_logger(__name__)


class NotificationAlreadyRecordedError(PermanentError):
    """The event already created its notifications (its inbox row must have been pruned)."""


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRY_LATER = "retry_later"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class DeliveryResult:
    notification_id: uuid.UUID
    outcome: Outcome
    error: Exception | None = None


def record_welcome_notifications(
    session: Session, event: Envelope[UserSignedUp], now: datetime | None = None
) -> list[Notification]:
    """Owe the new user a welcome email and, if they gave a phone number, a welcome SMS.

    Nothing is sent here: the rows are the intent, written in the caller's transaction.
    """
    now = now or datetime.now(UTC)
    data = event.data
    template_data = {"full_name": data.full_name, "plan": data.plan}
    owed = [(Channel.EMAIL, str(data.email), templates.WELCOME_EMAIL)]
    if data.phone is not None:
        owed.append((Channel.SMS, data.phone, templates.WELCOME_SMS))
    notifications = [
        Notification(
            id=uuid.uuid4(),
            user_id=data.user_id,
            channel=channel,
            recipient=recipient,
            template=template,
            template_data=template_data,
            status=NotificationStatus.PENDING,
            attempts=0,
            causing_event_id=event.id,
            created_at=now,
            updated_at=now,
        )
        for channel, recipient, template in owed
    ]
    session.add_all(notifications)
    try:
        session.flush()
    except IntegrityError as exc:
        if _violates(exc, EVENT_CHANNEL_UNIQUE):
            raise NotificationAlreadyRecordedError(f"event {event.id} already recorded") from exc
        raise
    for notification in notifications:
        log.debug(
            "notification.recorded",
            notification_id=str(notification.id),
            channel=notification.channel.value,
            user_id=str(data.user_id),
        )
    return notifications


_TABLE: Table = Notification.metadata.tables[Notification.__tablename__]
_INSERT = insert(_TABLE)


def record_welcome_notifications_for(
    session: Session, events: Sequence[Envelope[UserSignedUp]], now: datetime | None = None
) -> int:
    """``record_welcome_notifications`` for several events: one INSERT statement, no ORM objects.

    Returns how many notifications are owed now. An event already recorded fails the whole
    statement (the runtime then replays the batch one event at a time, which names it).
    """
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for event in events:
        data = event.data
        template_data = {"full_name": data.full_name, "plan": data.plan}
        owed = [(Channel.EMAIL, str(data.email), templates.WELCOME_EMAIL)]
        if data.phone is not None:
            owed.append((Channel.SMS, data.phone, templates.WELCOME_SMS))
        rows.extend(
            {
                "id": uuid.uuid4(),
                "user_id": data.user_id,
                "channel": channel,
                "recipient": recipient,
                "template": template,
                "template_data": template_data,
                "status": NotificationStatus.PENDING,
                "attempts": 0,
                "causing_event_id": event.id,
                "created_at": now,
                "updated_at": now,
            }
            for channel, recipient, template in owed
        )
    if not rows:
        return 0
    try:
        # On the session's connection: Core's executemany (one multi-row INSERT), not the ORM's
        # bulk path.
        session.connection().execute(_INSERT, rows)
    except IntegrityError as exc:
        if _violates(exc, EVENT_CHANNEL_UNIQUE):
            raise NotificationAlreadyRecordedError("a batch event already recorded") from exc
        raise
    log.debug("notifications.recorded", events=len(events), notifications=len(rows))
    return len(rows)


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag: Any = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def pending_for_event(session: Session, event_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of the event's notifications that still wait to be sent."""
    return list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.causing_event_id == event_id,
                Notification.status == NotificationStatus.PENDING,
            )
            .order_by(Notification.channel)
        )
    )


def pending_for_events(
    session: Session, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """``pending_for_event`` for several events in one query: ids by event (events owing nothing
    are absent)."""
    if not event_ids:
        return {}
    owed: dict[uuid.UUID, list[uuid.UUID]] = {}
    rows = session.execute(
        select(Notification.causing_event_id, Notification.id)
        .where(
            Notification.causing_event_id.in_(event_ids),
            Notification.status == NotificationStatus.PENDING,
        )
        .order_by(Notification.causing_event_id, Notification.channel)
    )
    for event_id, notification_id in rows:
        owed.setdefault(event_id, []).append(notification_id)
    return owed


def stale_pending(session: Session, older_than: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of pending notifications nobody touched since ``older_than``, oldest first.

    A crash between recording and delivering, or retries the broker gave up on, leave such rows.
    """
    return list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.status == NotificationStatus.PENDING,
                Notification.updated_at < older_than,
            )
            .order_by(Notification.updated_at)
            .limit(limit)
        )
    )


_LOCK_PENDING = (
    select(
        _TABLE.c.channel,
        _TABLE.c.recipient,
        _TABLE.c.template,
        _TABLE.c.template_data,
        _TABLE.c.attempts,
    )
    .where(
        _TABLE.c.id == bindparam("notification_id"), _TABLE.c.status == NotificationStatus.PENDING
    )
    .with_for_update(skip_locked=True)
)
# The SET clause comes from the parameters' keys (columns); one cached statement per outcome.
_RECORD_ATTEMPT = update(_TABLE).where(_TABLE.c.id == bindparam("notification_id"))


@dataclass(frozen=True)
class Owed:
    """What sending one notification needs: read from its locked row."""

    id: uuid.UUID
    channel: Channel
    recipient: str
    template: str
    template_data: dict[str, Any]
    attempts: int


def deliver_notification(
    session: Session,
    notification_id: uuid.UUID,
    email: EmailSender,
    sms: SmsSender,
    now: datetime,
) -> DeliveryResult:
    """Send one pending notification and record the outcome; never raises a provider's error.

    The row stays locked until the caller's transaction ends, so a concurrent deliverer skips it,
    and a row no longer pending once the lock is ours (someone sent it meanwhile) is left alone.
    The caller commits even when sending failed: the attempt and its error are part of the story.
    Two Core statements on the session's connection (lock and read, then record the outcome):
    no ORM object, identity map or flush on this path.
    """
    connection = session.connection()
    row = connection.execute(_LOCK_PENDING, {"notification_id": notification_id}).first()
    if row is None:
        log.debug("notification.skipped", notification_id=str(notification_id))
        return DeliveryResult(notification_id, Outcome.SKIPPED)
    channel, recipient, template, template_data, attempts = row
    owed = Owed(
        notification_id, Channel(channel), recipient, template, template_data, (attempts or 0) + 1
    )
    try:
        provider_message_id = _send(owed, email, sms)
    except PermanentError as exc:
        _record(connection, owed, now, status=NotificationStatus.FAILED, last_error=_error(exc))
        log.warning(
            "notification.failed",
            notification_id=str(notification_id),
            channel=owed.channel.value,
            attempts=owed.attempts,
            error=str(exc),
        )
        return DeliveryResult(notification_id, Outcome.FAILED, exc)
    except TransientError as exc:
        _record(connection, owed, now, last_error=_error(exc))
        log.warning(
            "notification.retry_later",
            notification_id=str(notification_id),
            channel=owed.channel.value,
            attempts=owed.attempts,
            error=str(exc),
        )
        return DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)
    _record(
        connection,
        owed,
        now,
        status=NotificationStatus.SENT,
        last_error=None,
        provider_message_id=provider_message_id,
        sent_at=now,
    )
    log.debug(
        "notification.sent",
        notification_id=str(notification_id),
        channel=owed.channel.value,
        attempts=owed.attempts,
    )
    return DeliveryResult(notification_id, Outcome.SENT)


def _error(exc: Exception) -> str:
    return str(exc)[:MAX_ERROR_LENGTH]


def _record(connection: Connection, owed: Owed, now: datetime, **values: Any) -> None:
    """One attempt counted, with its outcome (as ``Notification.record_attempt`` and
    ``mark_sent``/``mark_failed`` would change the row)."""
    connection.execute(
        _RECORD_ATTEMPT,
        {"notification_id": owed.id, "attempts": owed.attempts, "updated_at": now, **values},
    )


def _send(owed: Owed, email: EmailSender, sms: SmsSender) -> str:
    if owed.channel is Channel.EMAIL:
        content = templates.render_email(owed.template, owed.template_data)
        return email.send(Email(owed.id, owed.recipient, content.subject, content.text))
    body = templates.render_sms(owed.template, owed.template_data)
    return sms.send(Sms(owed.id, owed.recipient, body))


def prune_inbox(session: Session, retention: timedelta) -> int:
    """Forget handled event ids older than ``retention`` (longer than any redelivery)."""
    pruned = inbox.prune(session, InboxMessage, retention)
    if pruned:
        log.info("inbox.pruned", rows=pruned)
    return pruned
