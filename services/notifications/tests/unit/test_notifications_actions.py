"""The actions with their model functions replaced by fakes: what they decide, what they store."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifications import actions, models, templates
from notifications.actions import (
    DeliveryResult,
    Outcome,
    Senders,
    StillDeliveringError,
)
from notifications.adapters.sms import SmsRejectedError, SmsTransientError
from notifications.adapters.smtp import EmailRejectedError, EmailTransientError
from notifications.models import Channel, NotificationStatus, Owed, PendingRef
from notifications.testing import FakeEmailSender, FakeSmsSender
from signup_contracts import testing as contract_events
from signup_shared.events import Envelope, UserSignedUp

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]
SESSION: Any = object()  # the actions only hand it to the model functions


@dataclass
class FakeModels:
    """The model functions the actions call, recording what they were given."""

    locked: Owed | None = None
    added: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[tuple[str, Owed, Any]] = field(default_factory=list)
    asked: list[tuple[str, Any]] = field(default_factory=list)
    welcomed: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeModels":
        monkeypatch.setattr(models, "claim_welcomes", self.claim_welcomes)
        monkeypatch.setattr(models, "add_notifications", lambda _s, rows: self.added.extend(rows))
        monkeypatch.setattr(models, "lock_pending", self.lock_pending)
        monkeypatch.setattr(
            models, "record_sent", lambda _s, o, pid, when: self.recorded.append(("sent", o, pid))
        )
        monkeypatch.setattr(
            models,
            "record_retry_later",
            lambda _s, o, error, when: self.recorded.append(("retry", o, error)),
        )
        monkeypatch.setattr(
            models,
            "record_failed",
            lambda _s, o, error, when: self.recorded.append(("failed", o, error)),
        )
        return self

    def claim_welcomes(
        self, _session: Any, first_events: dict[uuid.UUID, uuid.UUID], _now: datetime
    ) -> set[uuid.UUID]:
        """As the table does: a user claimed once stays claimed by that event."""
        self.asked.append(("claim", dict(first_events)))
        claimed = {user for user in first_events if user not in self.welcomed}
        self.welcomed |= {user: first_events[user] for user in claimed}
        return claimed

    def lock_pending(self, _session: Any, notification_id: uuid.UUID) -> Owed | None:
        self.asked.append(("lock", notification_id))
        return self.locked


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> FakeModels:
    return FakeModels().install(monkeypatch)


def test_a_new_user_is_owed_a_welcome_email_and_sms(
    fake_models: FakeModels, signed_up: SignedUp
) -> None:
    event = signed_up()
    actions.owe_welcome(SESSION, [event], NOW)
    email, sms = fake_models.added
    assert (email["channel"], email["recipient"], email["template"]) == (
        Channel.EMAIL,
        "ada@example.com",
        templates.WELCOME_EMAIL,
    )
    assert (sms["channel"], sms["recipient"], sms["template"]) == (
        Channel.SMS,
        "+14155550123",
        templates.WELCOME_SMS,
    )
    for row in (email, sms):
        assert (row["user_id"], row["causing_event_id"]) == (event.data.user_id, event.id)
        # a v1 event carries no locale: the welcome is in English
        assert row["template_data"] == {"full_name": "Ada Lovelace", "plan": "pro", "locale": "en"}
        assert (row["status"], row["attempts"]) == (NotificationStatus.PENDING, 0)

        assert (row["created_at"], row["updated_at"], row["sent_at"]) == (NOW, NOW, None)
    assert email["id"] != sms["id"]


def test_the_welcome_keeps_the_locale_of_a_v2_event_for_its_language(
    fake_models: FakeModels,
) -> None:
    event = contract_events.user_signed_up_v2(locale="de-AT", full_name="Jürgen Groß")
    actions.owe_welcome(SESSION, [event], NOW)
    [email, *_] = fake_models.added
    assert email["template_data"]["locale"] == "de-AT"
    assert templates.render_email(email["template"], email["template_data"]).language == "de"


def test_a_user_without_a_phone_is_owed_the_email_only(
    fake_models: FakeModels, signed_up: SignedUp
) -> None:
    actions.owe_welcome(SESSION, [signed_up(phone=None)], NOW)
    assert [row["channel"] for row in fake_models.added] == [Channel.EMAIL]


def test_the_first_event_for_a_user_decides_the_welcome(
    fake_models: FakeModels, signed_up: SignedUp
) -> None:
    first = signed_up(phone=None)
    second = signed_up(user_id=first.data.user_id, email="second@example.com")
    actions.owe_welcome(SESSION, [first, second], NOW)
    actions.owe_welcome(SESSION, [second], NOW)
    assert [(r["causing_event_id"], r["channel"]) for r in fake_models.added] == [
        (first.id, Channel.EMAIL)
    ]
    # One claim per user per batch, for the batch's first event of that user.
    assert fake_models.asked == [
        ("claim", {first.data.user_id: first.id}),
        ("claim", {first.data.user_id: second.id}),
    ]


def test_a_user_claimed_elsewhere_is_owed_nothing(
    fake_models: FakeModels, signed_up: SignedUp
) -> None:
    event = signed_up()
    fake_models.welcomed[event.data.user_id] = uuid.uuid4()  # another process was first
    actions.owe_welcome(SESSION, [event], NOW)
    assert fake_models.added == []


def test_a_batch_is_owed_in_one_call_of_the_model(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    calls: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(models, "claim_welcomes", lambda _s, firsts, _now: set(firsts))
    monkeypatch.setattr(models, "add_notifications", lambda _s, rows: calls.append(list(rows)))
    events = [signed_up(), signed_up(phone=None), signed_up()]
    actions.owe_welcome(SESSION, events, NOW)
    [rows] = calls
    assert [(row["causing_event_id"], row["channel"]) for row in rows] == [
        (events[0].id, Channel.EMAIL),
        (events[0].id, Channel.SMS),
        (events[1].id, Channel.EMAIL),
        (events[2].id, Channel.EMAIL),
        (events[2].id, Channel.SMS),
    ]


def owed(channel: Channel = Channel.EMAIL, **fields: Any) -> Owed:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "channel": channel,
        "recipient": "ada@example.com" if channel is Channel.EMAIL else "+14155550123",
        "template": templates.WELCOME_EMAIL if channel is Channel.EMAIL else templates.WELCOME_SMS,
        "template_data": {"full_name": "Ada Lovelace", "plan": "pro"},
        "attempts": 1,
        **fields,
    }
    return Owed(**values)


def deliver(
    fake_models: FakeModels,
    locked: Owed | None,
    email: FakeEmailSender | None = None,
    sms: FakeSmsSender | None = None,
) -> DeliveryResult:
    fake_models.locked = locked
    notification_id = locked.id if locked else uuid.uuid4()
    senders = Senders(email or FakeEmailSender(), sms or FakeSmsSender())
    return actions.deliver(SESSION, notification_id, senders, NOW)


def test_delivers_a_pending_email_rendered_from_its_template(fake_models: FakeModels) -> None:
    notification, email = owed(), FakeEmailSender()
    result = deliver(fake_models, notification, email=email)
    [sent] = email.sent
    assert (sent.idempotency_key, sent.to) == (notification.id, "ada@example.com")
    assert sent.subject == "Welcome to Signup Platform, Ada!"
    assert "Your Pro plan is ready" in sent.text
    assert sent.html is not None and "Ada Lovelace" in sent.html
    assert result == DeliveryResult(notification.id, Outcome.SENT)
    assert fake_models.recorded == [("sent", notification, f"<{notification.id}@signup.local>")]


def test_delivers_a_pending_sms_through_the_gateway(fake_models: FakeModels) -> None:
    notification, email, sms = owed(Channel.SMS), FakeEmailSender(), FakeSmsSender()
    result = deliver(fake_models, notification, email=email, sms=sms)
    [sent] = sms.sent
    assert (sent.idempotency_key, sent.to) == (notification.id, "+14155550123")
    assert sent.body == (
        "Welcome to Signup Platform, Ada! Your Pro plan is ready. Import your files in the app."
    )
    assert email.sent == [] and result.outcome is Outcome.SENT
    assert fake_models.recorded == [("sent", notification, f"fake-sms-{notification.id}")]


def test_skips_what_is_locked_by_another_deliverer_or_no_longer_pending(
    fake_models: FakeModels,
) -> None:
    email, sms = FakeEmailSender(), FakeSmsSender()
    result = deliver(fake_models, None, email=email, sms=sms)
    assert result.outcome is Outcome.SKIPPED and result.error is None
    assert email.sent == [] and sms.sent == [] and fake_models.recorded == []


def test_a_transient_failure_is_recorded_and_left_for_a_retry(fake_models: FakeModels) -> None:
    notification = owed(Channel.SMS, attempts=3)
    error = SmsTransientError("SMS gateway answered 503")
    result = deliver(fake_models, notification, sms=FakeSmsSender(error))
    assert result == DeliveryResult(notification.id, Outcome.RETRY_LATER, error)
    assert fake_models.recorded == [("retry", notification, "SMS gateway answered 503")]


def test_a_permanent_refusal_fails_the_notification(fake_models: FakeModels) -> None:
    notification = owed(Channel.SMS)
    error = SmsRejectedError("SMS gateway answered 400: invalid to")
    result = deliver(fake_models, notification, sms=FakeSmsSender(error))
    assert result == DeliveryResult(notification.id, Outcome.FAILED, error)
    assert fake_models.recorded == [("failed", notification, str(error))]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (EmailTransientError("SMTP 451"), Outcome.RETRY_LATER),
        (EmailRejectedError("SMTP 550"), Outcome.FAILED),
    ],
)
def test_email_failures_are_classified_like_sms_ones(
    fake_models: FakeModels, error: Exception, outcome: Outcome
) -> None:
    result = deliver(fake_models, owed(), email=FakeEmailSender(error))
    assert (result.outcome, result.error) == (outcome, error)


def test_an_unknown_template_fails_without_sending(fake_models: FakeModels) -> None:
    email = FakeEmailSender()
    result = deliver(fake_models, owed(template="invoice_email"), email=email)
    assert result.outcome is Outcome.FAILED and email.sent == []
    assert [kind for kind, _, _ in fake_models.recorded] == ["failed"]


def test_an_unexpected_error_propagates_and_records_nothing(fake_models: FakeModels) -> None:
    with pytest.raises(RuntimeError):
        deliver(fake_models, owed(), email=FakeEmailSender(RuntimeError("bug")))
    assert fake_models.recorded == []


EVENT_A, EVENT_B = uuid.uuid4(), uuid.uuid4()
EMAIL_A, SMS_A, EMAIL_B = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PENDING = [
    PendingRef(EVENT_A, EMAIL_A, Channel.EMAIL),
    PendingRef(EVENT_A, SMS_A, Channel.SMS),
    PendingRef(EVENT_B, EMAIL_B, Channel.EMAIL),
]


def test_errors_by_event_name_each_event_once_preferring_what_a_retry_may_fix() -> None:
    refused, busy = SmsRejectedError("400"), EmailTransientError("451")
    results = {
        EMAIL_A: DeliveryResult(EMAIL_A, Outcome.RETRY_LATER, busy),
        SMS_A: DeliveryResult(SMS_A, Outcome.FAILED, refused),
        EMAIL_B: DeliveryResult(EMAIL_B, Outcome.SENT),
    }
    assert actions.errors_by_event(PENDING, results) == {EVENT_A: busy}
    results[EMAIL_A] = DeliveryResult(EMAIL_A, Outcome.SENT)
    assert actions.errors_by_event(PENDING, results) == {EVENT_A: refused}


def test_a_delivery_without_a_result_yet_is_a_transient_error_of_its_event() -> None:
    results = {EMAIL_A: DeliveryResult(EMAIL_A, Outcome.SENT)}
    errors = actions.errors_by_event(PENDING[:2] + PENDING[2:], results)
    assert set(errors) == {EVENT_A, EVENT_B}
    assert isinstance(errors[EVENT_A], StillDeliveringError)
    assert str(errors[EVENT_B]) == "email still sending"


def test_pending_of_events_asks_for_each_event_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[uuid.UUID]] = []

    def pending_of_events(_session: Any, ids: list[uuid.UUID]) -> list[PendingRef]:
        asked.append(ids)
        return PENDING

    monkeypatch.setattr(models, "pending_of_events", pending_of_events)
    assert actions.pending_of_events(SESSION, [EVENT_A, EVENT_B, EVENT_A]) == PENDING
    assert asked == [[EVENT_A, EVENT_B]]


def test_pending_by_channel_gives_the_age_of_the_oldest_in_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        models,
        "pending_by_channel",
        lambda _s: {
            Channel.EMAIL: (3, NOW - timedelta(seconds=90)),
            Channel.SMS: (1, NOW + timedelta(seconds=1)),  # another clock, slightly ahead
        },
    )
    assert actions.pending_by_channel(SESSION, NOW) == {
        Channel.EMAIL: (3, 90.0),
        Channel.SMS: (1, 0.0),
    }
