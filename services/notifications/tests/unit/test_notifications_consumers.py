import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from notifications import actions, consumers
from notifications.actions import DeliveryResult, Outcome
from notifications.adapters.email import EmailRejectedError, FakeEmailSender
from notifications.adapters.sms import FakeSmsSender, SmsRejectedError, SmsTransientError
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.testing import FakeSession

SignedUp = Callable[..., Envelope[UserSignedUp]]
EVENT_ID = uuid.uuid4()
EMAIL_ID, SMS_ID = uuid.uuid4(), uuid.uuid4()


class FakeSessions:
    """A session factory handing out a new FakeSession each time, remembered in order."""

    def __init__(self) -> None:
        self.opened: list[FakeSession] = []

    def __call__(self) -> FakeSession:
        self.opened.append(FakeSession())
        return self.opened[-1]


Planned = dict[uuid.UUID, DeliveryResult | Exception]


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> Callable[[Planned], list[Any]]:
    """Fake the event's pending ids and the delivery action: each id returns its planned result
    or raises its planned exception. Returns the (session, id) of every delivery asked for."""

    def install(planned: Planned) -> list[Any]:
        calls: list[Any] = []

        def deliver(session: FakeSession, notification_id: uuid.UUID, *_: Any) -> DeliveryResult:
            calls.append((session, notification_id))
            result = planned[notification_id]
            if isinstance(result, Exception):
                raise result
            return result

        monkeypatch.setattr(actions, "pending_for_event", lambda _s, _e: list(planned))
        monkeypatch.setattr(actions, "deliver_notification", deliver)
        return calls

    return install


def sent(notification_id: uuid.UUID) -> DeliveryResult:
    return DeliveryResult(notification_id, Outcome.SENT)


def failed(notification_id: uuid.UUID, error: Exception) -> DeliveryResult:
    return DeliveryResult(notification_id, Outcome.FAILED, error)


def retry(notification_id: uuid.UUID, error: Exception) -> DeliveryResult:
    return DeliveryResult(notification_id, Outcome.RETRY_LATER, error)


def test_on_user_signed_up_records_the_welcome_notifications(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(
        actions,
        "record_welcome_notifications",
        lambda session, event: calls.append((session, event)),
    )
    session, event = FakeSession(), signed_up()
    consumers.on_user_signed_up(session, event)  # type: ignore[arg-type]
    assert calls == [(session, event)]
    assert session.commits == 0


def test_each_pending_notification_is_delivered_in_its_own_committed_transaction(
    delivered: Callable[[Planned], list[Any]],
) -> None:
    calls = delivered({EMAIL_ID: sent(EMAIL_ID), SMS_ID: sent(SMS_ID)})
    sessions = FakeSessions()
    results = consumers.deliver_for_event(sessions, FakeEmailSender(), FakeSmsSender(), EVENT_ID)  # type: ignore[arg-type]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    lookup, *deliveries = sessions.opened
    assert (lookup.commits, lookup.rollbacks) == (0, 1)
    assert [(s.commits, s.rollbacks) for s in deliveries] == [(1, 0), (1, 0)]
    assert calls == [(deliveries[0], EMAIL_ID), (deliveries[1], SMS_ID)]


def test_an_sms_refusal_does_not_stop_the_email_and_is_raised_for_the_dead_letter_queue(
    delivered: Callable[[Planned], list[Any]],
) -> None:
    refusal = SmsRejectedError("SMS gateway answered 400")
    calls = delivered({SMS_ID: failed(SMS_ID, refusal), EMAIL_ID: sent(EMAIL_ID)})
    sessions = FakeSessions()
    with pytest.raises(SmsRejectedError) as raised:
        consumers.deliver_for_event(sessions, FakeEmailSender(), FakeSmsSender(), EVENT_ID)  # type: ignore[arg-type]
    assert raised.value is refusal
    assert [notification_id for _, notification_id in calls] == [SMS_ID, EMAIL_ID]
    assert [s.commits for s in sessions.opened[1:]] == [1, 1]


def test_a_transient_failure_wins_over_a_permanent_one_so_the_broker_retries(
    delivered: Callable[[Planned], list[Any]],
) -> None:
    transient = SmsTransientError("503")
    delivered(
        {EMAIL_ID: failed(EMAIL_ID, EmailRejectedError("550")), SMS_ID: retry(SMS_ID, transient)}
    )
    with pytest.raises(SmsTransientError) as raised:
        consumers.deliver_for_event(FakeSessions(), FakeEmailSender(), FakeSmsSender(), EVENT_ID)  # type: ignore[arg-type]
    assert raised.value is transient


def test_a_crashing_delivery_is_rolled_back_and_the_others_still_go(
    delivered: Callable[[Planned], list[Any]],
) -> None:
    crash = RuntimeError("database went away")
    calls = delivered({EMAIL_ID: crash, SMS_ID: sent(SMS_ID)})
    sessions = FakeSessions()
    with capture_logs() as logs, pytest.raises(RuntimeError) as raised:
        consumers.deliver_for_event(sessions, FakeEmailSender(), FakeSmsSender(), EVENT_ID)  # type: ignore[arg-type]
    assert raised.value is crash
    assert [log["event"] for log in logs] == ["notification.delivery_crashed"]
    assert len(calls) == 2
    crashed, delivered_sms = sessions.opened[1:]
    assert (crashed.commits, crashed.rollbacks, delivered_sms.commits) == (0, 1, 1)


def test_an_event_with_nothing_pending_delivers_nothing(
    delivered: Callable[[Planned], list[Any]],
) -> None:
    calls = delivered({})
    assert (
        consumers.deliver_for_event(
            FakeSessions(),
            FakeEmailSender(),
            FakeSmsSender(),  # type: ignore[arg-type]
            EVENT_ID,
        )
        == []
    )
    assert calls == []


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], None),
        ([Outcome.SENT, Outcome.SKIPPED], None),
        ([EmailRejectedError("550"), SmsTransientError("503")], SmsTransientError),
        ([EmailRejectedError("550"), Outcome.SENT], EmailRejectedError),
        ([RuntimeError("crash"), SmsRejectedError("400")], RuntimeError),
    ],
)
def test_first_error_prefers_what_a_retry_may_fix(results: list[Any], expected: Any) -> None:
    as_results = [
        DeliveryResult(uuid.uuid4(), Outcome.RETRY_LATER, r)
        if isinstance(r, Exception)
        else DeliveryResult(uuid.uuid4(), r)
        for r in results
    ]
    error = consumers.first_error(as_results)
    assert (type(error) if error else None) is expected


def test_sweep_delivers_a_batch_of_notifications_idle_for_longer_than_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[datetime, int]] = []

    def stale(_session: Any, older_than: datetime, limit: int) -> list[uuid.UUID]:
        asked.append((older_than, limit))
        return [EMAIL_ID, SMS_ID]

    monkeypatch.setattr(actions, "stale_pending", stale)
    monkeypatch.setattr(
        actions, "deliver_notification", lambda _s, notification_id, *_: sent(notification_id)
    )
    before = datetime.now(UTC)
    results = consumers.sweep(
        FakeSessions(),
        FakeEmailSender(),
        FakeSmsSender(),  # type: ignore[arg-type]
        grace=timedelta(seconds=30),
        batch_size=100,
    )
    [(older_than, limit)] = asked
    assert limit == 100
    assert before - timedelta(seconds=30) <= older_than <= datetime.now(UTC) - timedelta(seconds=30)
    assert [r.notification_id for r in results] == [EMAIL_ID, SMS_ID]


def test_sweep_never_raises_a_delivery_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "stale_pending", lambda *_: [SMS_ID])
    monkeypatch.setattr(
        actions,
        "deliver_notification",
        lambda _s, notification_id, *_: failed(notification_id, SmsRejectedError("400")),
    )
    [result] = consumers.sweep(
        FakeSessions(),
        FakeEmailSender(),
        FakeSmsSender(),  # type: ignore[arg-type]
        grace=timedelta(seconds=30),
        batch_size=10,
    )
    assert result.outcome is Outcome.FAILED


def test_prune_inbox_commits_what_the_action_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "prune_inbox", lambda _s, retention: retention.days)
    sessions = FakeSessions()
    assert consumers.prune_inbox(sessions, timedelta(days=7)) == 7  # type: ignore[arg-type]
    assert sessions.opened[0].commits == 1


def test_deliver_welcome_sends_what_each_event_owes_on_the_pool_and_reports_errors_by_event(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    fine, refused = signed_up(), signed_up()
    owed = {fine.id: [EMAIL_ID], refused.id: [SMS_ID]}
    refusal = SmsRejectedError("SMS gateway answered 400")
    monkeypatch.setattr(
        actions, "pending_for_events", lambda _s, event_ids: {i: owed[i] for i in event_ids}
    )
    monkeypatch.setattr(
        actions,
        "deliver_notification",
        lambda _s, nid, *_: failed(nid, refusal) if nid == SMS_ID else sent(nid),
    )
    mapped: list[list[Any]] = []

    class Pool:
        def map(self, fn: Any, items: Any) -> Any:
            items = list(items)
            mapped.append(items)
            return [fn(item) for item in items]

    sessions = FakeSessions()
    errors = consumers.deliver_welcome(
        [fine, refused, fine],
        sessions=sessions,
        email=FakeEmailSender(),  # type: ignore[arg-type]
        sms=FakeSmsSender(),
        pool=Pool(),
    )  # type: ignore[arg-type]

    assert errors == {refused.id: refusal}
    # A redelivered event within the batch is delivered once.
    assert mapped == [[(fine.id, EMAIL_ID), (refused.id, SMS_ID)]]
    lookup, *deliveries = sessions.opened
    assert (lookup.rollbacks, [s.commits for s in deliveries]) == (1, [1, 1])


def test_the_subscription_owes_user_signed_up_from_accounts() -> None:
    assert (consumers.on_user_signed_up,) == consumers.SUBSCRIPTIONS
    assert (consumers.on_user_signed_up.producer, consumers.on_user_signed_up.events) == (
        "accounts",
        (UserSignedUp,),
    )
    assert consumers.on_user_signed_up.after_commit_step is consumers.deliver_welcome


def test_the_batch_step_records_every_new_event_of_the_batch_at_once(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    recorded: list[list[Any]] = []
    monkeypatch.setattr(
        actions,
        "record_welcome_notifications_for",
        lambda _s, events: recorded.append(list(events)),
    )
    events = [signed_up(), signed_up()]
    assert consumers.on_user_signed_up.batch_step is consumers.record_welcome_batch
    consumers.record_welcome_batch(FakeSession(), events)  # type: ignore[arg-type]
    assert recorded == [events]
