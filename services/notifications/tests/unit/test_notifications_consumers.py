"""The glue: which action each entry point calls, and the transactions it opens around them."""

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from notifications import actions, consumers
from notifications.actions import Channel, DeliveryResult, Outcome, PendingRef, Senders
from notifications.adapters.sms import SmsRejectedError
from notifications.testing import FakeEmailSender, FakeSmsSender
from signup_shared.events import Envelope, UserSignedUp, UserSignedUpV2

SignedUp = Callable[..., Envelope[UserSignedUp]]
EVENT_ID = uuid.uuid4()
EMAIL_ID, SMS_ID = uuid.uuid4(), uuid.uuid4()
PENDING = [PendingRef(EVENT_ID, EMAIL_ID, Channel.EMAIL), PendingRef(EVENT_ID, SMS_ID, Channel.SMS)]


class Transaction:
    """A session as the glue uses it: a context manager that commits or rolls back."""

    def __init__(self) -> None:
        self.commits = self.rollbacks = 0

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


class Sessions:
    def __init__(self) -> None:
        self.opened: list[Transaction] = []

    def __call__(self) -> Transaction:
        self.opened.append(Transaction())
        return self.opened[-1]


class InlineLanes:
    """Runs each job at once, remembering on which channel it was asked to run."""

    def __init__(self) -> None:
        self.ran: list[tuple[uuid.UUID, str]] = []
        self.waits: list[float | None] = []

    def run(self, jobs: Any, wait: float | None) -> dict[uuid.UUID, DeliveryResult]:
        self.waits.append(wait)
        self.ran.extend((key, channel) for key, channel, _ in jobs)
        return {key: job() for key, _, job in jobs}


def delivery(sessions: Sessions, lanes: InlineLanes | None = None) -> consumers.Delivery:
    senders = Senders(FakeEmailSender(), FakeSmsSender())
    return consumers.Delivery(sessions, senders, lanes or InlineLanes(), wait=2.0)  # type: ignore[arg-type]


def test_on_user_signed_up_owes_the_welcome_in_the_callers_transaction(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(actions, "owe_welcome", lambda s, events, now: calls.append((s, events)))
    session, event = Transaction(), signed_up()
    consumers.on_user_signed_up(session, event)
    assert calls == [(session, [event])]
    assert (session.commits, session.rollbacks) == (0, 0)


def test_the_batch_step_owes_every_new_event_of_the_batch_at_once(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(actions, "owe_welcome", lambda s, events, now: calls.append(list(events)))
    events = [signed_up(), signed_up()]
    assert consumers.on_user_signed_up.batch_step is consumers.owe_welcome_batch
    consumers.owe_welcome_batch(Transaction(), events)  # type: ignore[arg-type]
    assert calls == [events]


def test_the_subscription_owes_user_signed_up_from_accounts_then_delivers() -> None:
    assert consumers.on_user_signed_up in consumers.SUBSCRIPTIONS
    assert (consumers.on_user_signed_up.producer, consumers.on_user_signed_up.events) == (
        "accounts",
        (UserSignedUp, UserSignedUpV2),
    )
    assert consumers.on_user_signed_up.after_commit_step is consumers.deliver_welcome


def test_deliver_welcome_delivers_what_the_events_owe_each_on_its_channel(
    monkeypatch: pytest.MonkeyPatch, signed_up: SignedUp
) -> None:
    refusal = SmsRejectedError("SMS gateway answered 400")
    asked: list[Any] = []

    def pending_of_events(_session: Any, ids: Any) -> list[PendingRef]:
        asked.append(list(ids))
        return PENDING

    monkeypatch.setattr(actions, "pending_of_events", pending_of_events)
    monkeypatch.setattr(
        actions,
        "deliver",
        lambda _s, nid, _senders, _now: (
            DeliveryResult(nid, Outcome.FAILED, refusal)
            if nid == SMS_ID
            else DeliveryResult(nid, Outcome.SENT)
        ),
    )
    sessions, lanes = Sessions(), InlineLanes()
    event = signed_up()
    errors = consumers.deliver_welcome([event], delivery=delivery(sessions, lanes))
    assert errors == {EVENT_ID: refusal}
    assert asked == [[event.id]]
    assert lanes.ran == [(EMAIL_ID, "email"), (SMS_ID, "sms")] and lanes.waits == [2.0]
    lookup, *deliveries = sessions.opened
    assert (lookup.commits, lookup.rollbacks) == (0, 1)  # a read: nothing kept
    assert [(s.commits, s.rollbacks) for s in deliveries] == [(1, 0), (1, 0)]


def test_a_crashing_delivery_is_rolled_back_and_reported_as_retry_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash = RuntimeError("database went away")

    def deliver(_s: Any, nid: uuid.UUID, *_: Any) -> DeliveryResult:
        if nid == EMAIL_ID:
            raise crash
        return DeliveryResult(nid, Outcome.SENT)

    monkeypatch.setattr(actions, "pending_of_events", lambda _s, _ids: PENDING)
    monkeypatch.setattr(actions, "deliver", deliver)
    sessions = Sessions()
    with capture_logs() as logs:
        errors = delivery(sessions).for_events([EVENT_ID])
    assert errors == {EVENT_ID: crash}
    assert [log["event"] for log in logs] == ["notification.delivery_crashed"]
    crashed, delivered_sms = sessions.opened[1:]
    assert (crashed.commits, crashed.rollbacks, delivered_sms.commits) == (0, 1, 1)


def test_sweep_delivers_what_was_left_pending_longer_than_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[Any] = []

    def stale(_s: Any, older_than: Any, limit: int) -> list[PendingRef]:
        asked.append(limit)
        return PENDING

    monkeypatch.setattr(actions, "stale_pending", stale)
    monkeypatch.setattr(actions, "deliver", lambda _s, nid, *_: DeliveryResult(nid, Outcome.SENT))
    with capture_logs() as logs:
        results = delivery(Sessions()).sweep(timedelta(seconds=30), 100)
    assert asked == [100]
    assert [r.notification_id for r in results] == [EMAIL_ID, SMS_ID]
    assert logs[-1]["event"] == "sweep.finished" and logs[-1]["sent"] == 2


def test_pending_by_channel_is_read_in_a_transaction_that_keeps_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(actions, "pending_by_channel", lambda _s, _now: {Channel.SMS: (2, 5.0)})
    sessions = Sessions()
    assert delivery(sessions).pending_by_channel() == {Channel.SMS: (2, 5.0)}
    assert (sessions.opened[0].commits, sessions.opened[0].rollbacks) == (0, 1)


def test_with_read_sessions_the_lookups_use_them_and_each_delivery_a_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(actions, "pending_of_events", lambda _s, _ids: PENDING)
    monkeypatch.setattr(actions, "stale_pending", lambda _s, _older, _limit: PENDING)
    monkeypatch.setattr(actions, "pending_by_channel", lambda _s, _now: {})
    monkeypatch.setattr(actions, "deliver", lambda _s, nid, *_: DeliveryResult(nid, Outcome.SENT))
    sessions, reads = Sessions(), Sessions()
    glue = consumers.Delivery(
        sessions,  # type: ignore[arg-type]
        Senders(FakeEmailSender(), FakeSmsSender()),
        InlineLanes(),  # type: ignore[arg-type]
        wait=2.0,
        reads=reads,  # type: ignore[arg-type]
    )
    assert glue.for_events([EVENT_ID]) == {}
    glue.sweep(timedelta(seconds=30), 100)
    glue.pending_by_channel()
    assert len(reads.opened) == 3  # the three lookups
    assert [(s.commits, s.rollbacks) for s in sessions.opened] == [(1, 0)] * 4  # 2 x 2 sends
