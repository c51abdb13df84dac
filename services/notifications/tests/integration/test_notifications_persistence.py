import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from notifications import actions, bootstrap, consumers
from notifications.actions import NotificationAlreadyRecordedError, Outcome
from notifications.adapters.email import Email, FakeEmailSender
from notifications.adapters.sms import FakeSmsSender, SmsRejectedError, SmsTransientError
from notifications.models import Channel, InboxMessage, Notification, NotificationStatus
from notifications.settings import NotificationsSettings
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.consumer import Subscription
from signup_shared.messaging.handlers import exactly_once

pytestmark = pytest.mark.integration

CONSUMER = "notifications.user_signed_up"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]


def subscription(sessions: sessionmaker[Session], email: Any, sms: Any) -> Subscription:
    """The runtime's subscription as the worker builds it, with these senders."""
    [queue] = bootstrap.queues(NotificationsSettings())
    return consumers.on_user_signed_up.subscription(
        queue,
        sessions,
        InboxMessage,
        # The fixture's sessions share one connection: deliver one at a time.
        {"sessions": sessions, "email": email, "sms": sms, "pool": ThreadPoolExecutor(1)},
    )


def notifications_of(session: Session, event_id: uuid.UUID) -> dict[Channel, Notification]:
    rows = session.scalars(select(Notification).where(Notification.causing_event_id == event_id))
    return {row.channel: row for row in rows}


def test_recorded_notifications_round_trip_through_the_mapping(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up()
    actions.record_welcome_notifications(session, event, now=NOW)
    session.expire_all()
    rows = notifications_of(session, event.id)
    assert set(rows) == {Channel.EMAIL, Channel.SMS}
    email = rows[Channel.EMAIL]
    assert (email.recipient, email.template, email.status, email.attempts) == (
        "ada@example.com",
        "welcome_email",
        NotificationStatus.PENDING,
        0,
    )
    assert email.template_data == {"full_name": "Ada Lovelace", "plan": "pro"}
    assert (email.user_id, email.created_at, email.updated_at) == (event.data.user_id, NOW, NOW)
    assert (email.sent_at, email.provider_message_id, email.last_error) == (None, None, None)


def test_a_batch_is_recorded_in_one_statement_like_one_event_at_a_time(
    session: Session, signed_up: SignedUp
) -> None:
    with_phone, without_phone = signed_up(), signed_up(phone=None)
    statements: list[str] = []
    connection = session.connection()

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa_event.listen(connection, "before_cursor_execute", count)
    try:
        assert (
            actions.record_welcome_notifications_for(session, [with_phone, without_phone], now=NOW)
            == 3
        )
    finally:
        sa_event.remove(connection, "before_cursor_execute", count)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO notifications")
    batch = notifications_of(session, with_phone.id)
    reference = signed_up()
    actions.record_welcome_notifications(session, reference, now=NOW)
    one_by_one = notifications_of(session, reference.id)
    assert set(batch) == set(one_by_one) == {Channel.EMAIL, Channel.SMS}
    columns = (
        "recipient",
        "template",
        "template_data",
        "status",
        "attempts",
        "created_at",
        "updated_at",
        "sent_at",
        "provider_message_id",
        "last_error",
    )
    for channel in batch:
        assert [getattr(batch[channel], c) for c in columns] == [
            getattr(one_by_one[channel], c) for c in columns
        ]
        assert batch[channel].user_id == with_phone.data.user_id
    assert set(notifications_of(session, without_phone.id)) == {Channel.EMAIL}
    assert actions.pending_for_events(session, [with_phone.id, without_phone.id]) == {
        with_phone.id: [batch[Channel.EMAIL].id, batch[Channel.SMS].id],
        without_phone.id: [notifications_of(session, without_phone.id)[Channel.EMAIL].id],
    }
    assert actions.pending_for_events(session, []) == {}


def test_a_batch_with_an_event_already_recorded_is_a_permanent_error(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up()
    actions.record_welcome_notifications(session, event)
    with pytest.raises(NotificationAlreadyRecordedError):
        actions.record_welcome_notifications_for(session, [signed_up(), event])


def test_one_event_cannot_owe_two_notifications_on_one_channel(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up(phone=None)
    actions.record_welcome_notifications(session, event)
    with pytest.raises(NotificationAlreadyRecordedError):
        actions.record_welcome_notifications(session, event)


def test_the_unique_constraint_holds_below_the_action(session: Session) -> None:
    event_id = uuid.uuid4()
    row = {
        "user_id": uuid.uuid4(),
        "channel": Channel.SMS,
        "recipient": "+14155550123",
        "template": "welcome_sms",
        "template_data": {},
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "causing_event_id": event_id,
        "created_at": NOW,
        "updated_at": NOW,
    }
    session.execute(insert(Notification).values(id=uuid.uuid4(), **row))
    with pytest.raises(IntegrityError, match="uq_notifications_event_channel"):
        session.execute(insert(Notification).values(id=uuid.uuid4(), **row))


def test_pending_for_event_lists_only_that_events_pending_notifications_email_first(
    session: Session, signed_up: SignedUp
) -> None:
    event, other = signed_up(), signed_up()
    email, sms = actions.record_welcome_notifications(session, event)
    actions.record_welcome_notifications(session, other)
    assert actions.pending_for_event(session, event.id) == [email.id, sms.id]
    email.mark_sent("<x@signup.local>", NOW)
    sms.mark_failed("400")
    session.flush()
    assert actions.pending_for_event(session, event.id) == []


def test_stale_pending_finds_pending_rows_untouched_since_the_cutoff_oldest_first(
    session: Session, signed_up: SignedUp
) -> None:
    hour = timedelta(hours=1)

    def recorded_at(when: datetime) -> Notification:
        [notification] = actions.record_welcome_notifications(
            session, signed_up(phone=None), now=when
        )
        return notification

    oldest, older, fresh, sent = (
        recorded_at(NOW - 3 * hour),
        recorded_at(NOW - 2 * hour),
        recorded_at(NOW),
        recorded_at(NOW - 4 * hour),
    )
    sent.mark_sent("<y@signup.local>", NOW - 4 * hour)
    session.flush()
    assert actions.stale_pending(session, NOW - hour, limit=10) == [oldest.id, older.id]
    assert actions.stale_pending(session, NOW - hour, limit=1) == [oldest.id]
    oldest.record_attempt(NOW - hour / 2, "SMTP 451")
    session.flush()
    assert actions.stale_pending(session, NOW - hour, limit=10) == [older.id]
    assert actions.stale_pending(session, NOW + hour, limit=10) == [older.id, oldest.id, fresh.id]


def test_the_exactly_once_handler_records_once_even_when_redelivered(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up()
    handle = exactly_once(CONSUMER, InboxMessage, consumers.on_user_signed_up)
    handle(session, event, persist=None)
    handle(session, event, persist=None)
    assert set(notifications_of(session, event.id)) == {Channel.EMAIL, Channel.SMS}
    assert session.scalar(select(func.count()).select_from(Notification)) == 2
    assert session.scalar(select(func.count()).select_from(InboxMessage)) == 1


def test_the_consumer_handler_records_then_delivers_and_a_redelivery_sends_nothing_twice(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender()
    handle = subscription(sessions, email, sms).handler
    event = signed_up()
    handle(event)
    handle(event)
    with sessions() as session:
        rows = notifications_of(session, event.id)
    assert [m.idempotency_key for m in email.sent] == [rows[Channel.EMAIL].id]
    assert [m.idempotency_key for m in sms.sent] == [rows[Channel.SMS].id]
    assert {row.status for row in rows.values()} == {NotificationStatus.SENT}
    assert rows[Channel.SMS].provider_message_id == f"fake-sms-{rows[Channel.SMS].id}"


def test_a_redelivery_delivers_what_a_transient_failure_left_pending(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender(SmsTransientError("SMS gateway answered 503"))
    handle = subscription(sessions, email, sms).handler
    event = signed_up()
    with pytest.raises(SmsTransientError):
        handle(event)
    with sessions() as session:
        rows = notifications_of(session, event.id)
        assert rows[Channel.EMAIL].status is NotificationStatus.SENT
        assert (rows[Channel.SMS].status, rows[Channel.SMS].attempts) == (
            NotificationStatus.PENDING,
            1,
        )
        assert rows[Channel.SMS].last_error == "SMS gateway answered 503"
    handle(event)
    with sessions() as session:
        sms_row = notifications_of(session, event.id)[Channel.SMS]
        assert (sms_row.status, sms_row.attempts, sms_row.last_error) == (
            NotificationStatus.SENT,
            2,
            None,
        )
    assert len(email.sent) == 1 and len(sms.sent) == 1


def test_a_refused_sms_fails_for_good_and_is_raised_after_the_email_went_out(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender(SmsRejectedError("SMS gateway answered 400"))
    handle = subscription(sessions, email, sms).handler
    event = signed_up()
    with pytest.raises(SmsRejectedError):
        handle(event)
    with sessions() as session:
        rows = notifications_of(session, event.id)
    assert rows[Channel.EMAIL].status is NotificationStatus.SENT
    assert rows[Channel.SMS].status is NotificationStatus.FAILED
    assert len(email.sent) == 1


def test_a_batch_owes_in_one_transaction_then_delivers_and_reports_each_events_error(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender(SmsRejectedError("SMS gateway answered 400"))
    batch_handler = subscription(sessions, email, sms).batch_handler
    assert batch_handler is not None
    with_phone, without_phone = signed_up(), signed_up(phone=None)

    errors = batch_handler([with_phone, without_phone, with_phone])

    assert list(errors) == [with_phone.id]
    assert isinstance(errors[with_phone.id], SmsRejectedError)
    with sessions() as session:
        assert {c: r.status for c, r in notifications_of(session, with_phone.id).items()} == {
            Channel.EMAIL: NotificationStatus.SENT,
            Channel.SMS: NotificationStatus.FAILED,
        }
        assert {c: r.status for c, r in notifications_of(session, without_phone.id).items()} == {
            Channel.EMAIL: NotificationStatus.SENT
        }
    assert sorted(m.to for m in email.sent) == sorted(
        [with_phone.data.email, without_phone.data.email]
    )
    assert batch_handler([with_phone, without_phone]) == {}
    assert len(email.sent) == 2 and sms.sent == []  # refused for good: not tried again


def test_the_sweeper_delivers_what_a_crash_left_behind(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    event = signed_up(phone=None)
    with sessions() as session, session.begin():
        actions.record_welcome_notifications(
            session, event, now=datetime.now(UTC) - timedelta(minutes=5)
        )
    email = FakeEmailSender()
    results = consumers.sweep(
        sessions, email, FakeSmsSender(), grace=timedelta(seconds=30), batch_size=100
    )
    assert [r.outcome for r in results] == [Outcome.SENT]
    assert [m.to for m in email.sent] == ["ada@example.com"]


def test_prune_inbox_forgets_only_events_older_than_the_retention(session: Session) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    session.execute(
        insert(InboxMessage).values(
            consumer=CONSUMER, event_id=old, received_at=func.now() - timedelta(days=8)
        )
    )
    session.execute(insert(InboxMessage).values(consumer=CONSUMER, event_id=recent))
    assert actions.prune_inbox(session, timedelta(days=7)) == 1
    assert list(session.scalars(select(InboxMessage.event_id))) == [recent]


def test_a_notification_being_sent_is_skipped_by_a_second_deliverer(
    engine: Engine, signed_up: SignedUp
) -> None:
    """Needs committed rows (an uncommitted one is invisible to the second deliverer), so it
    commits into the scratch database and deletes what it wrote."""
    event = signed_up(phone=None)
    with Session(engine) as setup, setup.begin():
        [notification] = actions.record_welcome_notifications(setup, event)
        notification_id = notification.id
    second_attempts: list[Outcome] = []

    class SecondDelivererDuringSend(FakeEmailSender):
        def send(self, email: Email) -> str:
            with Session(engine) as other, other.begin():
                # Without SKIP LOCKED this would wait on the first deliverer: fail, don't hang.
                other.execute(text("SET LOCAL lock_timeout = '2s'"))
                result = actions.deliver_notification(
                    other, notification_id, FakeEmailSender(), FakeSmsSender(), NOW
                )
            second_attempts.append(result.outcome)
            return super().send(email)

    try:
        first = SecondDelivererDuringSend()
        with Session(engine) as first_session, first_session.begin():
            result = actions.deliver_notification(
                first_session, notification_id, first, FakeSmsSender(), NOW
            )
        with Session(engine) as late, late.begin():
            after = actions.deliver_notification(
                late, notification_id, FakeEmailSender(), FakeSmsSender(), NOW
            )
        assert result.outcome is Outcome.SENT and len(first.sent) == 1
        assert second_attempts == [Outcome.SKIPPED]
        assert after.outcome is Outcome.SKIPPED
    finally:
        with Session(engine) as cleanup, cleanup.begin():
            cleanup.execute(delete(Notification).where(Notification.causing_event_id == event.id))
