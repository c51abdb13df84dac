import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from notifications import actions, templates
from notifications.actions import DeliveryResult, NotificationAlreadyRecordedError, Outcome
from notifications.adapters.email import EmailRejectedError, EmailTransientError, FakeEmailSender
from notifications.adapters.sms import FakeSmsSender, SmsRejectedError, SmsTransientError
from notifications.models import MAX_ERROR_LENGTH, Channel, Notification, NotificationStatus
from signup_shared.errors import PermanentError
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.testing import FakeSession

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]


def test_records_a_pending_welcome_email_and_sms(signed_up: SignedUp) -> None:
    session = FakeSession()
    event = signed_up()
    recorded = actions.record_welcome_notifications(session, event, now=NOW)  # type: ignore[arg-type]
    assert session.added_of(Notification) == recorded
    email, sms = recorded
    assert (email.channel, email.recipient, email.template) == (
        Channel.EMAIL,
        "ada@example.com",
        templates.WELCOME_EMAIL,
    )
    assert (sms.channel, sms.recipient, sms.template) == (
        Channel.SMS,
        "+14155550123",
        templates.WELCOME_SMS,
    )
    for notification in recorded:
        assert notification.status is NotificationStatus.PENDING
        assert (notification.user_id, notification.causing_event_id) == (
            event.data.user_id,
            event.id,
        )
        assert notification.template_data == {"full_name": "Ada Lovelace", "plan": "pro"}
        assert (notification.attempts, notification.created_at, notification.updated_at) == (
            0,
            NOW,
            NOW,
        )
    assert email.id != sms.id


def test_records_no_sms_for_a_user_without_a_phone(signed_up: SignedUp) -> None:
    session = FakeSession()
    [email] = actions.record_welcome_notifications(session, signed_up(phone=None))  # type: ignore[arg-type]
    assert email.channel is Channel.EMAIL
    assert len(session.added_of(Notification)) == 1


def test_recording_sends_nothing_and_leaves_the_commit_to_the_caller(signed_up: SignedUp) -> None:
    session = FakeSession()
    actions.record_welcome_notifications(session, signed_up())  # type: ignore[arg-type]
    assert (session.flushes, session.commits) == (1, 0)


class Diag:
    constraint_name = actions.EVENT_CHANNEL_UNIQUE


class DuplicateRow(Exception):
    diag = Diag()


class ConflictingSession(FakeSession):
    def flush(self) -> None:
        raise IntegrityError("INSERT INTO notifications", {}, DuplicateRow())


def test_an_event_recorded_twice_is_a_permanent_error(signed_up: SignedUp) -> None:
    with pytest.raises(NotificationAlreadyRecordedError) as raised:
        actions.record_welcome_notifications(ConflictingSession(), signed_up())  # type: ignore[arg-type]
    assert isinstance(raised.value, PermanentError)


def pending(channel: Channel = Channel.EMAIL, **fields: Any) -> Notification:
    recipient = "ada@example.com" if channel is Channel.EMAIL else "+14155550123"
    template = templates.WELCOME_EMAIL if channel is Channel.EMAIL else templates.WELCOME_SMS
    values = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "template_data": {"full_name": "Ada Lovelace", "plan": "pro"},
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "causing_event_id": uuid.uuid4(),
        "created_at": NOW,
        "updated_at": NOW,
        **fields,
    }
    return Notification(**values)


class Result:
    def __init__(self, row: tuple[Any, ...] | None) -> None:
        self.row = row

    def first(self) -> tuple[Any, ...] | None:
        return self.row


class LockingConnection:
    """Answers the lock with the row it holds (None: locked elsewhere or no longer pending) and
    applies the recorded outcome to ``row`` as the UPDATE would, keeping every statement."""

    def __init__(self, notification: Notification | None) -> None:
        self.notification = notification
        self.statements: list[tuple[str, dict[str, Any]]] = []
        self.commits = 0

    def connection(self) -> "LockingConnection":
        return self

    def execute(self, statement: Any, params: dict[str, Any]) -> Result:
        sql = str(statement.compile(dialect=postgresql.dialect()))
        self.statements.append((sql, params))
        n = self.notification
        if sql.startswith("SELECT"):
            assert "FOR UPDATE SKIP LOCKED" in sql and "status" in sql
            row = (
                None
                if n is None
                else (n.channel.value, n.recipient, n.template, n.template_data, n.attempts)
            )
            return Result(row)
        assert sql.startswith("UPDATE notifications SET") and n is not None
        assert params["notification_id"] == n.id
        for column, value in params.items():
            if column != "notification_id":
                setattr(n, column, value)
        return Result(None)


def deliver(
    notification: Notification | None,
    email: FakeEmailSender | None = None,
    sms: FakeSmsSender | None = None,
) -> tuple[DeliveryResult, LockingConnection]:
    session = LockingConnection(notification)
    notification_id = notification.id if notification else uuid.uuid4()
    result = actions.deliver_notification(
        session,
        notification_id,
        email or FakeEmailSender(),
        sms or FakeSmsSender(),
        LATER,  # type: ignore[arg-type]
    )
    return result, session


def test_delivers_a_pending_email_rendered_from_its_template() -> None:
    notification, email = pending(), FakeEmailSender()
    result, session = deliver(notification, email=email)
    [sent] = email.sent
    assert (sent.idempotency_key, sent.to) == (notification.id, "ada@example.com")
    assert sent.subject == "Welcome to Signup Platform, Ada!"
    assert "Your Pro plan is ready" in sent.text
    assert result == DeliveryResult(notification.id, Outcome.SENT)
    assert notification.status is NotificationStatus.SENT
    assert notification.provider_message_id == f"<{notification.id}@signup.local>"
    assert (notification.attempts, notification.sent_at, notification.last_error) == (
        1,
        LATER,
        None,
    )
    assert notification.updated_at == LATER
    assert session.commits == 0
    assert len(session.statements) == 2  # lock and read, then record: no other round trip


def test_delivers_a_pending_sms_through_the_gateway() -> None:
    notification, email, sms = pending(Channel.SMS), FakeEmailSender(), FakeSmsSender()
    result, _ = deliver(notification, email=email, sms=sms)
    [sent] = sms.sent
    assert (sent.idempotency_key, sent.to) == (notification.id, "+14155550123")
    assert sent.body == "Welcome to Signup Platform, Ada! Your Pro plan is ready."
    assert email.sent == []
    assert result.outcome is Outcome.SENT
    assert notification.provider_message_id == f"fake-sms-{notification.id}"


def test_skips_what_is_locked_by_another_deliverer_or_no_longer_pending() -> None:
    email, sms = FakeEmailSender(), FakeSmsSender()
    result, session = deliver(None, email=email, sms=sms)
    assert result.outcome is Outcome.SKIPPED and result.error is None
    assert email.sent == [] and sms.sent == []
    assert len(session.statements) == 1  # the lock only: nothing recorded


def test_a_transient_failure_is_recorded_and_left_pending_for_a_retry() -> None:
    notification = pending(Channel.SMS, attempts=2)
    error = SmsTransientError("SMS gateway answered 503")
    result, session = deliver(notification, sms=FakeSmsSender(error))
    assert result == DeliveryResult(notification.id, Outcome.RETRY_LATER, error)
    assert notification.status is NotificationStatus.PENDING
    assert (notification.attempts, notification.last_error) == (3, "SMS gateway answered 503")
    assert notification.updated_at == LATER
    assert session.commits == 0
    assert "status" not in session.statements[-1][1]


def test_a_permanent_refusal_fails_the_notification() -> None:
    notification = pending(Channel.SMS)
    error = SmsRejectedError("SMS gateway answered 400: invalid to")
    result, _ = deliver(notification, sms=FakeSmsSender(error))
    assert result == DeliveryResult(notification.id, Outcome.FAILED, error)
    assert notification.status is NotificationStatus.FAILED
    assert (notification.attempts, notification.last_error) == (
        1,
        "SMS gateway answered 400: invalid to",
    )
    assert notification.sent_at is None


def test_a_long_error_is_cut_to_what_the_column_keeps() -> None:
    notification = pending(Channel.SMS)
    deliver(notification, sms=FakeSmsSender(SmsTransientError("x" * (MAX_ERROR_LENGTH + 50))))
    assert notification.last_error == "x" * MAX_ERROR_LENGTH


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (EmailTransientError("SMTP 451"), Outcome.RETRY_LATER),
        (EmailRejectedError("SMTP 550"), Outcome.FAILED),
    ],
)
def test_email_failures_are_classified_like_sms_ones(error: Exception, outcome: Outcome) -> None:
    result, _ = deliver(pending(), email=FakeEmailSender(error))
    assert (result.outcome, result.error) == (outcome, error)


def test_an_unknown_template_fails_without_sending() -> None:
    notification, email = pending(template="invoice_email"), FakeEmailSender()
    result, _ = deliver(notification, email=email)
    assert result.outcome is Outcome.FAILED
    assert notification.status is NotificationStatus.FAILED
    assert email.sent == []


def test_an_unexpected_error_propagates_so_the_caller_rolls_back() -> None:
    notification = pending()
    with pytest.raises(RuntimeError):
        deliver(notification, email=FakeEmailSender(RuntimeError("bug")))
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 0)
