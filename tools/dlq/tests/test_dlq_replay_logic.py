"""Unit tests: target resolution, header rewriting and the replay loop (in-memory channel)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from signup_contracts.amqp import FAILURE_HEADERS
from signup_dlq.deadletter import RawMessage
from signup_dlq.errors import PublishFailedError, UsageError
from signup_dlq.replay import (
    Replayer,
    ReplayOutcome,
    default_target,
    format_timestamp,
    replay_headers,
    replay_properties,
    resolve_target_queue,
)

DLQ = "notifications.user_signed_up.dlq"
QUEUE = "notifications.user_signed_up"
NOW = datetime(2024, 6, 1, 8, 30, 15, 123456, tzinfo=UTC)

FAILURE: dict[str, Any] = {
    "x-signup-failure-kind": "exhausted",
    "x-signup-error-type": "SmtpTimeout",
    "x-signup-error-message": "timeout",
    "x-signup-service": "notifications",
    "x-signup-attempts": 5,
    "x-signup-first-failure-at": "2024-05-01T12:00:01Z",
    "x-signup-last-failure-at": "2024-05-01T12:05:00Z",
    "x-signup-original-exchange": "events",
    "x-signup-original-routing-key": "accounts.user_signed_up",
    "x-signup-original-queue": QUEUE,
}


# --- target resolution --------------------------------------------------------------------


def test_target_from_signup_header() -> None:
    assert resolve_target_queue(DLQ, {"x-signup-original-queue": "other.q"}) == "other.q"


def test_signup_header_wins_over_first_death_queue() -> None:
    headers = {"x-signup-original-queue": "a.q", "x-first-death-queue": "b.q"}
    assert resolve_target_queue(DLQ, headers) == "a.q"


def test_target_from_first_death_queue() -> None:
    assert resolve_target_queue(DLQ, {"x-first-death-queue": "b.q"}) == "b.q"


def test_target_defaults_to_dlq_name_without_suffix() -> None:
    assert resolve_target_queue(DLQ, {}) == QUEUE


@pytest.mark.parametrize("blank", ["", "   ", None, b""])
def test_blank_headers_fall_through(blank: object) -> None:
    headers = {"x-signup-original-queue": blank, "x-first-death-queue": blank}
    assert resolve_target_queue(DLQ, headers) == QUEUE


def test_bytes_header_value_is_decoded() -> None:
    assert resolve_target_queue(DLQ, {"x-first-death-queue": b"b.q"}) == "b.q"


def test_retry_queue_resolves_to_its_main_queue() -> None:
    headers = {"x-first-death-queue": f"{QUEUE}.retry.30000"}
    assert resolve_target_queue(DLQ, headers) == QUEUE


def test_a_dlq_is_never_a_target() -> None:
    assert resolve_target_queue(DLQ, {"x-first-death-queue": DLQ}) == QUEUE
    assert resolve_target_queue(DLQ, {"x-signup-original-queue": "other.q.dlq"}) == QUEUE


def test_default_target_refuses_non_dlq() -> None:
    assert default_target(DLQ) == QUEUE
    with pytest.raises(UsageError):
        default_target(QUEUE)


# --- header rewriting ---------------------------------------------------------------------


def test_replay_headers_remove_failure_and_broker_headers() -> None:
    headers = {
        **FAILURE,
        "x-death": [{"count": 1}],
        "x-first-death-queue": QUEUE,
        "x-first-death-reason": "delivery_limit",
        "x-first-death-exchange": "events",
        "x-last-death-queue": QUEUE,
        "x-delivery-count": 3,
        "traceparent": "00-abc-def-01",
        "x-custom": "kept",
    }
    out = replay_headers(headers, NOW)
    assert not set(FAILURE_HEADERS) & out.keys()
    assert "x-signup-attempts" not in out
    assert not [k for k in out if k.startswith(("x-death", "x-first-death-", "x-last-death-"))]
    assert "x-delivery-count" not in out
    assert out["traceparent"] == "00-abc-def-01"
    assert out["x-custom"] == "kept"
    assert out["x-signup-replayed-at"] == "2024-06-01T08:30:15.123Z"
    assert out["x-signup-replay-count"] == 1


def test_replay_count_is_incremented() -> None:
    assert replay_headers({"x-signup-replay-count": 2}, NOW)["x-signup-replay-count"] == 3
    assert replay_headers({"x-signup-replay-count": b"4"}, NOW)["x-signup-replay-count"] == 5


@pytest.mark.parametrize("bad", ["junk", -3, None, {"a": 1}])
def test_bad_replay_count_restarts_at_one(bad: object) -> None:
    assert replay_headers({"x-signup-replay-count": bad}, NOW)["x-signup-replay-count"] == 1


def test_replay_headers_do_not_mutate_input() -> None:
    headers = dict(FAILURE)
    replay_headers(headers, NOW)
    assert headers == FAILURE


def test_replay_headers_accept_none() -> None:
    out = replay_headers(None, NOW)
    assert set(out) == {"x-signup-replayed-at", "x-signup-replay-count"}


def test_format_timestamp_is_utc_iso_with_z() -> None:
    paris = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 6, 1, 10, 0, tzinfo=paris)) == "2024-06-01T08:00:00.000Z"
    assert format_timestamp(datetime(2024, 6, 1, 10, 0)) == "2024-06-01T10:00:00.000Z"


def test_replay_properties_keep_everything_but_headers() -> None:
    props = {
        "message_id": "m-1",
        "content_type": "application/json",
        "delivery_mode": 2,
        "correlation_id": "c-1",
        "type": "user_signed_up",
        "timestamp": 1700000000,
        "app_id": "accounts",
        "priority": None,
        "headers": {"old": 1},
    }
    out = replay_properties(props, {"new": 2})
    assert out["headers"] == {"new": 2}
    assert out["message_id"] == "m-1"
    assert out["delivery_mode"] == 2
    assert out["timestamp"] == 1700000000
    assert "priority" not in out


# --- the replay loop ----------------------------------------------------------------------


class FakeChannel:
    """An in-memory broker: queues, unacked messages, confirms, and an event log."""

    def __init__(self, queues: dict[str, list[RawMessage]]) -> None:
        self.queues: dict[str, deque[RawMessage]] = {k: deque(v) for k, v in queues.items()}
        self.unacked: dict[int, tuple[str, RawMessage]] = {}
        self.log: list[tuple[str, Any]] = []
        self.published: list[tuple[str, bytes, Mapping[str, Any]]] = []
        self.next_tag = 1
        self.fail_publish_on: int | None = None  # raise KeyboardInterrupt on the Nth publish
        self.on_publish: Callable[[str, RawMessage], None] | None = None

    def get(self, queue: str) -> RawMessage | None:
        if not self.queues[queue]:
            self.log.append(("get", None))
            return None
        message = self.queues[queue].popleft()
        tagged = RawMessage(self.next_tag, message.body, message.properties)
        self.unacked[self.next_tag] = (queue, tagged)
        self.next_tag += 1
        self.log.append(("get", tagged.delivery_tag))
        return tagged

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        if self.fail_publish_on is not None and len(self.published) + 1 == self.fail_publish_on:
            raise KeyboardInterrupt
        if routing_key not in self.queues:
            raise PublishFailedError(f"unroutable: {routing_key}")
        message = RawMessage(0, body, dict(properties))
        self.queues[routing_key].append(message)
        self.published.append((routing_key, body, properties))
        self.log.append(("publish", routing_key))
        if self.on_publish is not None:
            self.on_publish(routing_key, message)

    def ack(self, delivery_tag: int) -> None:
        del self.unacked[delivery_tag]
        self.log.append(("ack", delivery_tag))

    def requeue(self, delivery_tag: int) -> None:
        queue, message = self.unacked.pop(delivery_tag)
        self.queues[queue].appendleft(message)
        self.log.append(("requeue", delivery_tag))

    def close(self) -> None:
        """What the broker does when the connection goes away: unacked back to the queue."""
        for tag in sorted(self.unacked, reverse=True):
            queue, message = self.unacked.pop(tag)
            self.queues[queue].appendleft(message)


def dead_letters(count: int, **extra_headers: Any) -> list[RawMessage]:
    return [
        RawMessage(
            0,
            f'{{"id": "evt-{i}"}}'.encode(),
            {
                "message_id": f"evt-{i}",
                "content_type": "application/json",
                "delivery_mode": 2,
                "headers": {**FAILURE, "x-keep": i, **extra_headers},
            },
        )
        for i in range(count)
    ]


def ids(messages: Any) -> list[str]:
    return [m.properties["message_id"] for m in messages]


def test_replay_moves_everything_in_order() -> None:
    channel = FakeChannel({DLQ: dead_letters(3), QUEUE: []})
    outcome = Replayer(channel, DLQ, max_messages=3, clock=lambda: NOW).run()
    assert outcome.moved == 3
    assert outcome.targets == {QUEUE: 3}
    assert not channel.queues[DLQ]
    assert ids(channel.queues[QUEUE]) == ["evt-0", "evt-1", "evt-2"]
    replayed = channel.queues[QUEUE][0]
    assert replayed.body == b'{"id": "evt-0"}'
    assert replayed.properties["content_type"] == "application/json"
    assert replayed.properties["delivery_mode"] == 2
    headers = replayed.properties["headers"]
    assert headers["x-keep"] == 0
    assert headers["x-signup-replay-count"] == 1
    assert headers["x-signup-replayed-at"] == "2024-06-01T08:30:15.123Z"
    assert not set(FAILURE_HEADERS) & headers.keys()


def test_each_message_is_acked_only_after_its_publish() -> None:
    channel = FakeChannel({DLQ: dead_letters(2), QUEUE: []})
    Replayer(channel, DLQ, max_messages=2).run()
    assert channel.log == [
        ("get", 1),
        ("publish", QUEUE),
        ("ack", 1),
        ("get", 2),
        ("publish", QUEUE),
        ("ack", 2),
    ]


def test_replay_stops_at_the_limit() -> None:
    channel = FakeChannel({DLQ: dead_letters(5), QUEUE: []})
    outcome = Replayer(channel, DLQ, max_messages=2).run()
    assert outcome.moved == 2
    assert ids(channel.queues[QUEUE]) == ["evt-0", "evt-1"]
    assert ids(channel.queues[DLQ]) == ["evt-2", "evt-3", "evt-4"]


def test_replay_stops_when_the_queue_is_empty() -> None:
    channel = FakeChannel({DLQ: dead_letters(2), QUEUE: []})
    outcome = Replayer(channel, DLQ, max_messages=10).run()
    assert outcome.moved == 2
    assert channel.log[-1] == ("get", None)


def test_zero_max_messages_touches_nothing() -> None:
    channel = FakeChannel({DLQ: dead_letters(2), QUEUE: []})
    assert Replayer(channel, DLQ, max_messages=0).run().moved == 0
    assert channel.log == []


def test_messages_failing_again_are_not_replayed_twice() -> None:
    """A consumer that dead-letters every replayed message straight back into the DLQ."""
    channel = FakeChannel({DLQ: dead_letters(3), QUEUE: []})

    def consumer_fails_again(routing_key: str, message: RawMessage) -> None:
        channel.queues[routing_key].remove(message)
        channel.queues[DLQ].append(message)

    channel.on_publish = consumer_fails_again
    outcome = Replayer(channel, DLQ, max_messages=3).run()  # bounded by the initial depth
    assert outcome.moved == 3
    assert len(channel.published) == 3
    assert len(channel.queues[DLQ]) == 3


def test_unroutable_message_is_requeued_and_stops_the_replay() -> None:
    messages = dead_letters(1) + dead_letters(1, **{"x-signup-original-queue": "gone.q"})
    messages += dead_letters(1)
    channel = FakeChannel({DLQ: messages, QUEUE: []})
    replayer = Replayer(channel, DLQ, max_messages=3)
    with pytest.raises(PublishFailedError, match="stopped after replaying 1 message"):
        replayer.run()
    assert replayer.outcome.moved == 1
    assert len(channel.queues[DLQ]) == 2
    assert channel.queues[DLQ][0].properties["headers"]["x-signup-original-queue"] == "gone.q"
    assert not channel.unacked


def test_interruption_loses_nothing() -> None:
    channel = FakeChannel({DLQ: dead_letters(5), QUEUE: []})
    channel.fail_publish_on = 3
    replayer = Replayer(channel, DLQ, max_messages=5)
    with pytest.raises(KeyboardInterrupt):
        replayer.run()
    assert replayer.outcome.moved == 2
    assert list(channel.unacked) == [3]  # taken, not published, not acked
    channel.close()
    assert ids(channel.queues[QUEUE]) == ["evt-0", "evt-1"]
    assert ids(channel.queues[DLQ]) == ["evt-2", "evt-3", "evt-4"]


def test_a_stop_requested_during_a_move_finishes_that_move_first() -> None:
    channel = FakeChannel({DLQ: dead_letters(5), QUEUE: []})
    replayer = Replayer(channel, DLQ, max_messages=5)
    channel.on_publish = lambda _queue, _message: (
        replayer.request_stop() if len(channel.published) == 2 else None
    )
    outcome = replayer.run()
    assert outcome.stopped and outcome.moved == 2
    assert not channel.unacked
    assert ids(channel.queues[QUEUE]) == ["evt-0", "evt-1"]
    assert ids(channel.queues[DLQ]) == ["evt-2", "evt-3", "evt-4"]


def test_a_replay_that_ran_to_the_end_was_not_stopped() -> None:
    channel = FakeChannel({DLQ: dead_letters(2), QUEUE: []})
    assert not Replayer(channel, DLQ, max_messages=2).run().stopped


def test_messages_go_to_their_own_original_queues() -> None:
    messages = dead_letters(1) + dead_letters(2, **{"x-signup-original-queue": "other.q"})
    channel = FakeChannel({DLQ: messages, QUEUE: [], "other.q": []})
    progress: list[str] = []
    outcome = Replayer(channel, DLQ, max_messages=3, on_moved=progress.append).run()
    assert outcome.targets == {QUEUE: 1, "other.q": 2}
    assert progress == [QUEUE, "other.q", "other.q"]
    assert outcome.target_label(QUEUE) == f"{QUEUE}, other.q"


def test_replayer_refuses_non_dlq() -> None:
    with pytest.raises(UsageError):
        Replayer(FakeChannel({QUEUE: []}), QUEUE, max_messages=1)


def test_outcome_label_falls_back_when_nothing_moved() -> None:
    assert ReplayOutcome().target_label(QUEUE) == QUEUE
