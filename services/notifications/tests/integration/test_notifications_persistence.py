"""The model functions against the real PostgreSQL (rollback tier), and the subscription's
transactions end to end with fake providers."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from notifications import actions, bootstrap, consumers, models
from notifications.actions import Outcome, Senders
from notifications.adapters.channel_pools import ChannelPools
from notifications.adapters.email_message import Email
from notifications.adapters.sms import SmsRejectedError, SmsTransientError
from notifications.models import Channel, InboxMessage, Notification, NotificationStatus, Owed
from notifications.settings import NotificationsSettings
from notifications.testing import FakeEmailSender, FakeSmsSender
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.consumer import Subscription
from signup_shared.messaging.failures import AfterCommitError

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]


def row(channel: Channel = Channel.EMAIL, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "user_id": uuid.uuid4(),
        "channel": channel,
        "recipient": "ada@example.com" if channel is Channel.EMAIL else "+14155550123",
        "template": "welcome_email" if channel is Channel.EMAIL else "welcome_sms",
        "template_data": {"full_name": "Ada Lovelace", "plan": "pro"},
        "causing_event_id": uuid.uuid4(),
        "now": NOW,
        **fields,
    }
    return models.notification_row(**values)


def stored(session: Session, notification_id: uuid.UUID) -> Notification:
    session.expire_all()
    notification = session.get(Notification, notification_id)
    assert notification is not None
    return notification


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Notification)) or 0


def test_added_rows_round_trip_through_the_mapping(session: Session) -> None:
    email, sms = row(), row(Channel.SMS)
    models.add_notifications(session, [email, sms])
    kept = stored(session, email["id"])
    assert (kept.channel, kept.recipient, kept.template, kept.status, kept.attempts) == (
        Channel.EMAIL,
        "ada@example.com",
        "welcome_email",
        NotificationStatus.PENDING,
        0,
    )
    assert kept.template_data == {"full_name": "Ada Lovelace", "plan": "pro"}
    assert (kept.created_at, kept.updated_at, kept.sent_at, kept.last_error) == (
        NOW,
        NOW,
        None,
        None,
    )
    assert stored(session, sms["id"]).channel is Channel.SMS
    models.add_notifications(session, [])
    assert count(session) == 2


def test_a_user_is_owed_each_kind_of_message_once_whichever_event_asks(
    session: Session,
) -> None:
    user = uuid.uuid4()
    first = row(user_id=user)
    models.add_notifications(session, [first])
    second_event = row(user_id=user, recipient="other@example.com")
    same_event_again = row(user_id=user, causing_event_id=first["causing_event_id"])
    models.add_notifications(
        session, [second_event, same_event_again, row(Channel.SMS, user_id=user)]
    )
    rows = session.scalars(select(Notification).where(Notification.user_id == user)).all()
    assert sorted((r.channel.value, r.recipient) for r in rows) == [
        ("email", "ada@example.com"),
        ("sms", "+14155550123"),
    ]


def test_the_owe_welcome_action_stores_one_welcome_per_user(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up()
    replayed = signed_up(user_id=event.data.user_id, email="second@example.com")
    actions.owe_welcome(session, [event, signed_up(phone=None)], NOW)
    actions.owe_welcome(session, [replayed], NOW)
    assert count(session) == 3
    assert [ref.channel for ref in models.pending_of_events(session, [event.id])] == [
        Channel.EMAIL,
        Channel.SMS,
    ]
    assert models.pending_of_events(session, [replayed.id]) == []


def test_pending_of_events_lists_only_their_pending_rows_email_first(session: Session) -> None:
    event, other = uuid.uuid4(), uuid.uuid4()
    sms, email = row(Channel.SMS, causing_event_id=event), row(causing_event_id=event)
    done = row(causing_event_id=other)
    models.add_notifications(session, [sms, email, done])
    owed = models.lock_pending(session, done["id"])
    assert owed is not None
    models.record_sent(session, owed, "<x@signup.local>", NOW)
    refs = models.pending_of_events(session, [event, other])
    assert [(r.event_id, r.id, r.channel) for r in refs] == [
        (event, email["id"], Channel.EMAIL),
        (event, sms["id"], Channel.SMS),
    ]
    assert models.pending_of_events(session, []) == []


def test_stale_pending_finds_rows_untouched_since_the_cutoff_oldest_first(
    session: Session,
) -> None:
    hour = timedelta(hours=1)
    oldest, older, fresh = row(now=NOW - 3 * hour), row(now=NOW - 2 * hour), row(now=NOW)
    models.add_notifications(session, [older, fresh, oldest])
    ids = [r.id for r in models.stale_pending(session, NOW - hour, limit=10)]
    assert ids == [oldest["id"], older["id"]]
    assert [r.id for r in models.stale_pending(session, NOW - hour, limit=1)] == [oldest["id"]]
    owed = models.lock_pending(session, oldest["id"])
    assert owed is not None
    models.record_retry_later(session, owed, "SMTP 451", NOW - hour / 2)
    assert [r.id for r in models.stale_pending(session, NOW - hour, limit=10)] == [older["id"]]


def test_lock_pending_reads_what_sending_needs_and_counts_this_attempt(session: Session) -> None:
    pending = row(Channel.SMS)
    models.add_notifications(session, [pending])
    assert models.lock_pending(session, pending["id"]) == Owed(
        pending["id"],
        Channel.SMS,
        "+14155550123",
        "welcome_sms",
        {"full_name": "Ada Lovelace", "plan": "pro"},
        1,
    )
    assert models.lock_pending(session, uuid.uuid4()) is None


def test_each_outcome_is_recorded_on_the_row(session: Session) -> None:
    later = NOW + timedelta(minutes=1)
    retry, sent, failed = row(), row(), row()
    models.add_notifications(session, [retry, sent, failed])
    locked = {r["id"]: models.lock_pending(session, r["id"]) for r in (retry, sent, failed)}
    models.record_retry_later(session, locked[retry["id"]], "x" * 3000, later)  # type: ignore[arg-type]
    models.record_sent(session, locked[sent["id"]], "<id@signup.local>", later)  # type: ignore[arg-type]
    models.record_failed(session, locked[failed["id"]], "SMS gateway answered 400", later)  # type: ignore[arg-type]
    r, s, f = (
        stored(session, retry["id"]),
        stored(session, sent["id"]),
        stored(session, failed["id"]),
    )
    assert (r.status, r.attempts, r.last_error, r.updated_at) == (
        NotificationStatus.PENDING,
        1,
        "x" * models.MAX_ERROR_LENGTH,
        later,
    )
    assert (s.status, s.attempts, s.provider_message_id, s.sent_at, s.last_error) == (
        NotificationStatus.SENT,
        1,
        "<id@signup.local>",
        later,
        None,
    )
    assert (f.status, f.last_error, f.sent_at) == (
        NotificationStatus.FAILED,
        "SMS gateway answered 400",
        None,
    )
    assert models.lock_pending(session, sent["id"]) is None
    assert models.lock_pending(session, failed["id"]) is None


def test_pending_by_channel_counts_and_dates_the_oldest(session: Session) -> None:
    assert models.pending_by_channel(session) == {}
    old = row(now=NOW - timedelta(minutes=5))
    models.add_notifications(session, [old, row(), row(Channel.SMS)])
    assert models.pending_by_channel(session) == {
        Channel.EMAIL: (2, NOW - timedelta(minutes=5)),
        Channel.SMS: (1, NOW),
    }


def test_a_notification_being_sent_is_skipped_by_a_second_deliverer(engine: Engine) -> None:
    """Needs committed rows (an uncommitted one is invisible to the second deliverer), so it
    commits into the scratch database and deletes what it wrote."""
    pending = row()
    with Session(engine) as setup, setup.begin():
        models.add_notifications(setup, [pending])
    try:
        with Session(engine) as first, first.begin():
            assert models.lock_pending(first, pending["id"]) is not None
            with Session(engine) as second, second.begin():
                # Without SKIP LOCKED this would wait on the first deliverer: fail, don't hang.
                second.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert models.lock_pending(second, pending["id"]) is None
    finally:
        with Session(engine) as cleanup, cleanup.begin():
            cleanup.execute(delete(Notification).where(Notification.id == pending["id"]))


# The subscription's transactions, with fake providers ------------------------------------------


def subscription(sessions: sessionmaker[Session], email: Any, sms: Any) -> Subscription:
    """The runtime's subscription as the worker builds it, with these senders."""
    queue = bootstrap.queues(NotificationsSettings())[0]
    # The fixture's sessions share one connection: deliver one at a time.
    lanes: ChannelPools[uuid.UUID, actions.DeliveryResult] = ChannelPools(["email"], 1)
    lanes._pools["sms"] = lanes._pools["email"]
    lanes._busy["sms"] = 0
    delivery = consumers.Delivery(sessions, Senders(email, sms), lanes, wait=None)
    return consumers.on_user_signed_up.subscription(
        queue, sessions, InboxMessage, {"delivery": delivery}
    )


def of_event(session: Session, event_id: uuid.UUID) -> dict[Channel, Notification]:
    rows = session.scalars(select(Notification).where(Notification.causing_event_id == event_id))
    return {r.channel: r for r in rows}


def test_the_handler_owes_then_delivers_and_a_redelivery_sends_nothing_twice(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender()
    handle = subscription(sessions, email, sms).handler
    event = signed_up()
    handle(event)
    handle(event)
    handle(signed_up(user_id=event.data.user_id))  # the same user under another event id
    with sessions() as session:
        rows = of_event(session, event.id)
        assert count(session) == 2
    assert [m.idempotency_key for m in email.sent] == [rows[Channel.EMAIL].id]
    assert [m.idempotency_key for m in sms.sent] == [rows[Channel.SMS].id]
    assert {r.status for r in rows.values()} == {NotificationStatus.SENT}


def test_a_redelivery_delivers_what_a_transient_failure_left_pending(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender(SmsTransientError("SMS gateway answered 503"))
    handle = subscription(sessions, email, sms).handler
    event = signed_up()
    with pytest.raises(AfterCommitError) as raised:  # committed; the SMS failed after it
        handle(event)
    assert isinstance(raised.value.error, SmsTransientError)
    handle(event)
    with sessions() as session:
        sms_row = of_event(session, event.id)[Channel.SMS]
        assert (sms_row.status, sms_row.attempts, sms_row.last_error) == (
            NotificationStatus.SENT,
            2,
            None,
        )
    assert len(email.sent) == 1 and len(sms.sent) == 1


def test_a_batch_owes_in_one_transaction_then_reports_each_events_error(
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
        assert {c: r.status for c, r in of_event(session, with_phone.id).items()} == {
            Channel.EMAIL: NotificationStatus.SENT,
            Channel.SMS: NotificationStatus.FAILED,
        }
    assert batch_handler([with_phone, without_phone]) == {}
    assert len(email.sent) == 2 and sms.sent == []  # refused for good: not tried again


def test_the_sweeper_delivers_what_a_crash_left_behind(
    sessions: sessionmaker[Session], signed_up: SignedUp
) -> None:
    event = signed_up(phone=None)
    with sessions() as session, session.begin():
        actions.owe_welcome(session, [event], datetime.now(UTC) - timedelta(minutes=5))
    email = FakeEmailSender()
    lanes: ChannelPools[uuid.UUID, actions.DeliveryResult] = ChannelPools(["email", "sms"], 1)
    try:
        delivery = consumers.Delivery(sessions, Senders(email, FakeSmsSender()), lanes, None)
        results = delivery.sweep(timedelta(seconds=30), 100)
    finally:
        lanes.shutdown()
    assert [r.outcome for r in results] == [Outcome.SENT]
    assert [m.to for m in email.sent] == ["ada@example.com"]
    assert isinstance(email.sent[0], Email)
