"""Unit tests: which dead letters are about an erased user, and the drop-erased walk
(in-memory channel and accounts)."""

from __future__ import annotations

import json
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import pytest

from signup_dlq.deadletter import RawMessage
from signup_dlq.erased import (
    DropOutcome,
    ErasedDropper,
    Keep,
    Subject,
    UserStatus,
    subject_of,
)
from signup_dlq.errors import (
    EXIT_ERROR,
    AccountsApiError,
    BrokerUnavailableError,
    PublishFailedError,
    UsageError,
)

DLQ = "notifications.user_signed_up.dlq"
ERASED = uuid.UUID("00000000-0000-4000-8000-00000000000e")
PRESENT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
STRANGER = uuid.UUID("00000000-0000-4000-8000-00000000000f")
FAILURE: dict[str, Any] = {
    "x-signup-failure-kind": "exhausted",
    "x-signup-error-type": "SmtpTimeout",
    "x-signup-attempts": 5,
    "x-signup-original-queue": "notifications.user_signed_up",
    "x-death": [{"queue": "notifications.user_signed_up", "reason": "rejected", "count": 1}],
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}


def envelope(event_type: str, version: int, **data: Any) -> bytes:
    return json.dumps(
        {"id": str(uuid.uuid4()), "type": event_type, "version": version, "data": data}
    ).encode()


def signup(user_id: uuid.UUID | str, version: int = 2) -> bytes:
    return envelope(
        "UserSignedUp", version, user_id=str(user_id), email="ada@example.test", full_name="Ada"
    )


def dead_letter(name: str, body: bytes) -> RawMessage:
    return RawMessage(
        0,
        body,
        {
            "message_id": name,
            "content_type": "application/json",
            "delivery_mode": 2,
            "correlation_id": f"corr-{name}",
            "headers": {**FAILURE, "x-name": name},
        },
    )


class FakeChannel:
    """One in-memory queue with unacked messages, confirms and a log of what was done.

    Messages given back (nack with requeue, or unacked when the connection closes) are
    delivered again first, in the order they were given back, as a quorum queue does (a
    classic queue puts them back where they were: the same order for a walk from the head).
    """

    def __init__(self, messages: list[RawMessage]) -> None:
        self.returned: deque[RawMessage] = deque()
        self.queue: deque[RawMessage] = deque(messages)
        self.unacked: dict[int, RawMessage] = {}
        self.log: list[tuple[str, Any]] = []
        self.next_tag = 1
        self.interrupt_at: int | None = None  # KeyboardInterrupt on the Nth operation
        self.nack_publish = False

    def _step(self, operation: str) -> None:
        if self.interrupt_at is not None and len(self.log) + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        assert operation

    def get(self, queue: str) -> RawMessage | None:
        assert queue == DLQ
        self._step("get")
        source = self.returned or self.queue
        if not source:
            self.log.append(("get", None))
            return None
        message = source.popleft()
        tagged = RawMessage(self.next_tag, message.body, message.properties)
        self.unacked[self.next_tag] = tagged
        self.log.append(("get", self.next_tag))
        self.next_tag += 1
        return tagged

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        self._step("publish")
        if self.nack_publish:
            raise PublishFailedError("the broker refused (nacked) the message")
        self.queue.append(RawMessage(0, body, dict(properties)))
        self.log.append(("publish", routing_key))

    def ack(self, delivery_tag: int) -> None:
        self._step("ack")
        del self.unacked[delivery_tag]
        self.log.append(("ack", delivery_tag))

    def requeue(self, delivery_tag: int) -> None:
        self.returned.append(self.unacked.pop(delivery_tag))
        self.log.append(("requeue", delivery_tag))

    def close(self) -> None:
        """What the broker does when the connection goes away: unacked back to the queue."""
        for tag in sorted(self.unacked):
            self.returned.append(self.unacked.pop(tag))

    def names(self) -> list[str]:
        return [m.properties["message_id"] for m in (*self.returned, *self.queue)]


class FakeAccounts:
    def __init__(self, statuses: Mapping[uuid.UUID, UserStatus], fail_on: int | None = None):
        self.statuses = dict(statuses)
        self.asked: list[uuid.UUID] = []
        self.fail_on = fail_on  # the Nth request fails like a 503

    def status(self, user_id: uuid.UUID) -> UserStatus:
        self.asked.append(user_id)
        if self.fail_on is not None and len(self.asked) == self.fail_on:
            raise AccountsApiError("accounts at http://accounts answered 503 Service Unavailable")
        return self.statuses.get(user_id, UserStatus.UNKNOWN)


ACCOUNTS = {ERASED: UserStatus.ERASED, PRESENT: UserStatus.PRESENT}


def mixed() -> list[RawMessage]:
    return [
        dead_letter("erased-1", signup(ERASED)),
        dead_letter("present", signup(PRESENT)),
        dead_letter("erased-v1", signup(ERASED, version=1)),
        dead_letter("erasure-request", envelope("UserErasureRequested", 1, user_id=str(ERASED))),
        dead_letter("not-json", b"\x00\xffnot json"),
        dead_letter("stranger", signup(STRANGER)),
    ]


KEPT = ["present", "erasure-request", "not-json", "stranger"]


# --- which dead letters name a user ---------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_a_signup_with_personal_data_in_clear_names_its_user(version: int) -> None:
    assert subject_of(signup(ERASED, version)) == Subject(ERASED, None, f"UserSignedUp v{version}")


@pytest.mark.parametrize(
    ("body", "keep"),
    [
        (envelope("UserSignedUp", 3, user_id=str(ERASED), personal={}), Keep.NO_PERSONAL_DATA),
        (envelope("UserErasureRequested", 1, user_id=str(ERASED)), Keep.NO_PERSONAL_DATA),
        (envelope("UserErased", 1, user_id=str(ERASED), holder="stats"), Keep.NO_PERSONAL_DATA),
        (envelope("SpaceProvisioned", 1, user_id=str(ERASED)), Keep.NO_PERSONAL_DATA),
        (envelope("UserSignedUp", 99, user_id=str(ERASED)), Keep.UNKNOWN_VERSION),
        (envelope("user_signed_up", 1, user_id=str(ERASED)), Keep.UNKNOWN_VERSION),
        (signup("not-a-uuid"), Keep.NO_USER_ID),
        (envelope("UserSignedUp", 2, email="ada@example.test"), Keep.NO_USER_ID),
        (envelope("UserSignedUp", 2, user_id=7), Keep.NO_USER_ID),
        (json.dumps({"type": "UserSignedUp", "version": 2, "data": []}).encode(), Keep.NO_USER_ID),
        (json.dumps({"type": "UserSignedUp", "version": True}).encode(), Keep.UNDECODABLE),
        (json.dumps({"type": "UserSignedUp", "version": "2"}).encode(), Keep.UNDECODABLE),
        (json.dumps([1, 2]).encode(), Keep.UNDECODABLE),
        (b"\x00\xff", Keep.UNDECODABLE),
        (b"", Keep.UNDECODABLE),
    ],
)
def test_everything_else_is_kept_without_asking(body: bytes, keep: Keep) -> None:
    subject = subject_of(body)
    assert subject.user_id is None
    assert subject.keep is keep


# --- the walk ---------------------------------------------------------------------------------


def test_erased_users_dead_letters_are_dropped_the_others_kept_in_order_unchanged() -> None:
    messages = mixed()
    channel = FakeChannel(messages)
    accounts = FakeAccounts(ACCOUNTS)
    outcome = ErasedDropper(channel, DLQ, accounts, max_messages=len(messages)).run()
    assert outcome.dropped == 2
    assert outcome.kept == Counter(
        {
            Keep.NOT_ERASED: 1,
            Keep.NO_PERSONAL_DATA: 1,
            Keep.UNDECODABLE: 1,
            Keep.UNKNOWN_USER: 1,
        }
    )
    assert channel.names() == KEPT
    originals = {m.properties["message_id"]: m for m in messages}
    for kept in channel.queue:  # body, properties and every header as they were
        original = originals[kept.properties["message_id"]]
        assert kept.body == original.body
        assert kept.properties == original.properties
        assert kept.properties["headers"]["x-death"] == FAILURE["x-death"]
    assert channel.unacked == {}
    assert outcome.lookups == 3 and sorted(accounts.asked) == sorted([ERASED, PRESENT, STRANGER])


def test_a_kept_message_is_acked_only_after_its_copy_was_confirmed() -> None:
    channel = FakeChannel(
        [dead_letter("present", signup(PRESENT)), dead_letter("gone", signup(ERASED))]
    )
    ErasedDropper(channel, DLQ, FakeAccounts(ACCOUNTS), max_messages=2).run()
    assert channel.log == [
        ("get", 1),
        ("publish", DLQ),
        ("ack", 1),
        ("get", 2),
        ("ack", 2),
    ]


def test_accounts_is_asked_once_per_user() -> None:
    messages = [dead_letter(f"m{i}", signup(ERASED if i % 2 else PRESENT)) for i in range(6)]
    accounts = FakeAccounts(ACCOUNTS)
    outcome = ErasedDropper(FakeChannel(messages), DLQ, accounts, max_messages=6).run()
    assert accounts.asked == [PRESENT, ERASED]
    assert (outcome.dropped, outcome.kept.total(), outcome.lookups) == (3, 3, 2)


def test_the_walk_stops_at_the_depth_seen_at_the_start() -> None:
    channel = FakeChannel([dead_letter("a", signup(PRESENT)), dead_letter("b", signup(PRESENT))])
    channel.queue.append(dead_letter("arrived-later", signup(ERASED)))
    outcome = ErasedDropper(channel, DLQ, FakeAccounts(ACCOUNTS), max_messages=2).run()
    assert outcome.handled == 2
    # The kept copies went to the back, behind the newcomer, and were not walked again.
    assert channel.names() == ["arrived-later", "a", "b"]


def test_an_empty_queue_ends_the_walk() -> None:
    outcome = ErasedDropper(FakeChannel([]), DLQ, FakeAccounts(ACCOUNTS), max_messages=5).run()
    assert outcome == DropOutcome()


def test_accounts_failing_stops_the_walk_and_leaves_the_rest_in_the_dlq() -> None:
    messages = mixed()
    channel = FakeChannel(messages)
    accounts = FakeAccounts(ACCOUNTS, fail_on=2)  # PRESENT, the second message
    dropper = ErasedDropper(channel, DLQ, accounts, max_messages=len(messages))
    with pytest.raises(AccountsApiError) as raised:
        dropper.run()
    assert raised.value.exit_code == EXIT_ERROR
    assert "503" in str(raised.value)
    assert f"stopped after 1 message(s) (1 dropped), the rest is still in {DLQ}" in str(
        raised.value
    )
    # The first was dropped; the one in hand went back; nothing after it was taken.
    assert channel.names() == [m.properties["message_id"] for m in messages[1:]]
    assert channel.unacked == {}
    assert [entry for entry in channel.log if entry[0] == "publish"] == []


def test_a_refused_copy_goes_back_and_stops_the_walk() -> None:
    channel = FakeChannel(
        [dead_letter("present", signup(PRESENT)), dead_letter("b", signup(PRESENT))]
    )
    channel.nack_publish = True
    with pytest.raises(PublishFailedError, match="stopped after 0 message"):
        ErasedDropper(channel, DLQ, FakeAccounts(ACCOUNTS), max_messages=2).run()
    assert channel.names() == ["present", "b"] and channel.unacked == {}


STEPS = 16  # of the walk over mixed(): 6 gets, 4 publishes (the kept), 6 acks


def test_the_walk_over_the_mixed_queue_takes_sixteen_steps() -> None:
    channel = FakeChannel(mixed())
    ErasedDropper(channel, DLQ, FakeAccounts(ACCOUNTS), max_messages=6).run()
    assert len(channel.log) == STEPS


@pytest.mark.parametrize("interrupt_at", range(1, STEPS + 1))
def test_an_interruption_at_any_step_loses_no_message_that_is_kept(interrupt_at: int) -> None:
    channel = FakeChannel(mixed())
    channel.interrupt_at = interrupt_at
    with pytest.raises(KeyboardInterrupt):
        ErasedDropper(channel, DLQ, FakeAccounts(ACCOUNTS), max_messages=6).run()
    channel.close()  # the connection goes away: the broker gives back what is unacked
    names = Counter(channel.names())
    assert set(KEPT) <= set(names), "no kept message is lost"
    assert sum(names.values()) - len(names) <= 1, "at worst one duplicate"
    assert set(names) <= {m.properties["message_id"] for m in mixed()}


def test_a_stop_request_ends_the_walk_at_the_next_message() -> None:
    channel = FakeChannel(mixed())
    dropper = ErasedDropper(
        channel,
        DLQ,
        FakeAccounts(ACCOUNTS),
        max_messages=6,
        on_handled=lambda decision: dropper.request_stop(),
    )
    outcome = dropper.run()
    assert outcome.stopped and outcome.handled == 1 and channel.unacked == {}
    assert channel.names() == [m.properties["message_id"] for m in mixed()[1:]]


def test_a_dry_run_changes_nothing_and_gives_everything_back_in_order() -> None:
    messages = mixed()
    channel = FakeChannel(messages)
    decisions: list[Any] = []
    outcome = ErasedDropper(
        channel,
        DLQ,
        FakeAccounts(ACCOUNTS),
        max_messages=6,
        dry_run=True,
        on_handled=decisions.append,
    ).run()
    assert (outcome.dropped, outcome.kept.total()) == (2, 4)
    assert channel.names() == [m.properties["message_id"] for m in messages]
    assert [op for op, _ in channel.log if op in {"publish", "ack"}] == []
    assert [d.message_id for d in decisions if d.keep is None] == ["erased-1", "erased-v1"]
    assert decisions[0].subject.event == "UserSignedUp v2"


def test_a_dry_run_stopped_by_accounts_gives_everything_back_in_order() -> None:
    messages = mixed()
    channel = FakeChannel(messages)
    dropper = ErasedDropper(
        channel, DLQ, FakeAccounts(ACCOUNTS, fail_on=3), max_messages=6, dry_run=True
    )
    with pytest.raises(AccountsApiError):
        dropper.run()
    assert channel.names() == [m.properties["message_id"] for m in messages]
    assert channel.unacked == {}


def test_only_a_dlq_is_walked() -> None:
    with pytest.raises(UsageError):
        ErasedDropper(
            FakeChannel([]), "notifications.user_signed_up", FakeAccounts({}), max_messages=1
        )


def test_the_kept_summary_names_each_reason() -> None:
    outcome = DropOutcome(dropped=1, kept=Counter({Keep.NO_USER_ID: 3, Keep.NOT_ERASED: 2}))
    assert outcome.kept_summary() == "kept 5 (user not erased: 2, no user id: 3)"
    assert DropOutcome().kept_summary() == "kept 0"


def test_a_dry_run_that_loses_the_broker_reports_the_broker_error() -> None:
    channel = FakeChannel(mixed())
    accounts = FakeAccounts(ACCOUNTS, fail_on=2)

    def broker_gone(delivery_tag: int) -> None:
        raise BrokerUnavailableError("lost the connection to the broker")

    channel.requeue = broker_gone  # type: ignore[method-assign]
    with pytest.raises(AccountsApiError, match="503"):
        ErasedDropper(channel, DLQ, accounts, max_messages=6, dry_run=True).run()
    channel.close()  # what the broker does once the connection is gone
    assert channel.names() == [m.properties["message_id"] for m in mixed()]
