"""No message can stop the consumer: whatever it holds, it ends acked, retried or dead-lettered."""

import functools
import math
import os
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signup_contracts import amqp
from signup_shared.backoff import Backoff
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import UserSignedUp
from signup_shared.messaging import consumer, failures
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import PublishError
from signup_shared.messaging.settling import Settled, settle
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.wire import (
    INT64_MAX,
    OutgoingMessage,
    header_int,
    sanitize_headers,
    short_text,
)
from signup_shared.testing import FakeMessage, user_signed_up

QUEUE = ConsumerQueue("stats", "accounts.user_signed_up", retry_delays_ms=(1_000, 10_000))
OUR_HEADERS = [
    amqp.ATTEMPTS_HEADER,
    amqp.FIRST_FAILURE_AT_HEADER,
    amqp.ORIGINAL_EXCHANGE_HEADER,
    amqp.ORIGINAL_ROUTING_KEY_HEADER,
    amqp.FAILURE_KIND_HEADER,
    "x-event-version",
    "x-death",
    "x-delivery-count",
    "x-first-death-reason",
]


def broker_would_accept(value: Any) -> bool:
    """RabbitMQ 3.10 refuses non-finite floats; py-amqp refuses ints beyond 64 bits."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value <= INT64_MAX
    if isinstance(value, dict):
        return all(broker_would_accept(v) for v in value.values())
    if isinstance(value, list):
        return all(broker_would_accept(v) for v in value)
    return True


class FakePublisher:
    """Encodes each copy as py-amqp would and checks the broker would take it; fails as told."""

    def __init__(self, failing_calls: set[int]) -> None:
        self.failing_calls = failing_calls
        self.calls = 0
        self.published: list[OutgoingMessage] = []

    def publish_batch(self, messages: list[OutgoingMessage]) -> None:
        self.calls += 1
        if self.calls in self.failing_calls:
            raise PublishError("broker connection failed: refused")
        for message in messages:
            amqp_message = message.to_amqp()
            amqp_message._serialize_properties()
            assert broker_would_accept(amqp_message.properties["application_headers"])
        self.published.extend(messages)

    def send(self, messages: Any) -> Any:
        raise NotImplementedError

    def wait(self, ticket: Any) -> None:
        raise NotImplementedError


amqp_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.just(UTC)),
)
amqp_values = st.recursive(
    amqp_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
header_tables = st.dictionaries(
    st.sampled_from(OUR_HEADERS) | st.text(max_size=20), amqp_values, max_size=8
)
anything = st.one_of(amqp_values, header_tables)
properties = st.one_of(
    st.dictionaries(
        st.sampled_from(["message_id", "type", "correlation_id", "app_id", "content_type"]),
        amqp_values,
        max_size=5,
    ),
    anything,
)
good_body = user_signed_up("accounts").to_json()
bodies = st.one_of(
    st.just(good_body), st.binary(max_size=64), st.text(max_size=64), st.none(), st.integers()
)
handler_outcomes = st.sampled_from(["ok", "transient", "permanent", "bug", "unprintable"])

# Hypothesis takes 10-20 ms to draw one of these messages (the code under test ~1 ms): under the
# unit profile (make unit) the two properties below run 4 examples; ci and properties their own.
UNIT = os.environ.get("HYPOTHESIS_PROFILE", "unit") == "unit"
BUDGET = settings(max_examples=4) if UNIT else settings.default


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def handler_for(outcome: str) -> Any:
    errors: dict[str, BaseException] = {
        "transient": TransientError("smtp 421 for ada@example.com"),
        "permanent": PermanentError("refused +442071838750"),
        "bug": OverflowError("cannot convert float infinity to integer"),
        "unprintable": Unprintable(),
    }

    def handle(_event: Any) -> None:
        if outcome in errors:
            raise errors[outcome]

    return handle


@settings(BUDGET, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies,
    headers=anything,
    props=properties,
    delivery_info=anything,
    outcome=handler_outcomes,
    failing_calls=st.sets(st.sampled_from([1, 2]), max_size=2),
)
def test_any_message_is_decided_and_settled_exactly_once(
    body: Any, headers: Any, props: Any, delivery_info: Any, outcome: str, failing_calls: set[int]
) -> None:
    message = FakeMessage(body, headers, props, delivery_info)
    subscription = Subscription(QUEUE, (UserSignedUp,), handler_for(outcome))
    publisher = FakePublisher(failing_calls)
    delivery = Delivery.of(message)

    decision = MessageProcessor(in_process_attempts=1, max_wait=0.0).process(subscription, delivery)
    assert decision is not None
    settled = settle(message, delivery, subscription, decision, publisher, "stats")

    assert len(message.acks) + len(message.rejects) == 1
    assert message.rejects in ([], [False])
    if settled is Settled.ACKED:
        assert decision.action is failures.Action.ACK and publisher.published == []
    elif settled is Settled.REJECTED:
        assert publisher.published == [] and message.acks == []
    else:
        [copy] = publisher.published
        assert message.acks == [False]
        assert copy.routing_key in {QUEUE.dlq_name, *(q.name for q in QUEUE.retry_queues())}
        assert copy.headers[amqp.FAILURE_KIND_HEADER] in {
            "permanent",
            "transient",
            "exhausted",
            "unprocessable",
        }
        assert "ada@example.com" not in copy.headers[amqp.ERROR_MESSAGE_HEADER]
        assert "+442071838750" not in copy.headers[amqp.ERROR_MESSAGE_HEADER]


@settings(BUDGET, deadline=None)
@given(value=anything)
def test_header_readers_never_raise(value: Any) -> None:
    assert 0 <= failures.attempts_so_far({amqp.ATTEMPTS_HEADER: value}) <= failures.MAX_ATTEMPTS
    assert failures.attempts_so_far(value) >= 0
    assert isinstance(short_text(value), str)
    assert len(short_text(value).encode()) <= 255
    assert broker_would_accept(sanitize_headers({"h": value})["h"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, 2),
        ("3", 3),
        (b"4", 4),
        (2.0, 2),
        (-5, 0),
        ("-5", 0),
        (2**70, 1_000_000),
        ("abc", 0),
        (float("nan"), 0),
        (float("inf"), 0),
        (True, 0),
        ({"a": 1}, 0),
        ([1], 0),
        (None, 0),
        (Decimal("7"), 7),
        (Decimal("NaN"), 0),
        ("٣", 0),
    ],
)
def test_header_int_reads_only_plain_whole_numbers(value: Any, expected: int) -> None:
    assert header_int(value, 0, low=0, high=1_000_000) == expected


def test_sanitized_headers_keep_what_the_broker_takes_and_render_the_rest() -> None:
    clean = sanitize_headers(
        {
            "big": 2**70,
            "nan": float("nan"),
            "ok": 1.5,
            "nested": {"inf": float("-inf")},
            "list": [2**64, "x"],
            "when": datetime(2026, 1, 1, tzinfo=UTC),
            7: "key",
        }
    )
    assert clean == {
        "big": str(2**70),
        "nan": "nan",
        "ok": 1.5,
        "nested": {"inf": "-inf"},
        "list": [str(2**64), "x"],
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "7": "key",
    }
    assert sanitize_headers(["not", "a", "table"]) == {}


def test_a_hostile_attempt_count_ends_in_the_dead_letter_queue_not_an_index_error() -> None:
    for attempts in (-5, 2**70, "abc", float("inf")):
        message = FakeMessage(
            b"junk", {amqp.ATTEMPTS_HEADER: attempts, "x-event-version": "abc"}, {}, {}
        )
        publisher = FakePublisher(set())
        subscription = Subscription(QUEUE, (UserSignedUp,), handler_for("ok"))
        delivery = Delivery.of(message)
        decision = MessageProcessor().process(subscription, delivery)
        assert decision is not None
        assert (
            settle(message, delivery, subscription, decision, publisher, "stats")
            is Settled.DEAD_LETTERED
        )
        [copy] = publisher.published
        assert copy.routing_key == QUEUE.dlq_name
        assert copy.headers["x-event-version"] == "abc"


def test_when_the_copy_is_refused_a_plain_unprocessable_copy_is_dead_lettered() -> None:
    message = FakeMessage(b"junk", {}, {"message_id": "m1"}, {})
    publisher = FakePublisher({1})
    subscription = Subscription(QUEUE, (UserSignedUp,), handler_for("ok"))
    delivery = Delivery.of(message)
    decision = failures.decide(PermanentError("bad"), 0, 2)
    assert (
        settle(message, delivery, subscription, decision, publisher, "stats")
        is Settled.DEAD_LETTERED
    )
    [copy] = publisher.published
    assert copy.headers[amqp.FAILURE_KIND_HEADER] == "unprocessable"
    assert copy.headers[amqp.ERROR_TYPE_HEADER] == "PublishError"
    assert (copy.exchange, copy.routing_key, copy.message_id) == (
        "events.dlx",
        QUEUE.dlq_name,
        "m1",
    )


def test_when_no_copy_can_be_published_the_message_is_rejected_without_requeue() -> None:
    message = FakeMessage(b"junk", {}, {}, {})
    subscription = Subscription(QUEUE, (UserSignedUp,), handler_for("ok"))
    decision = failures.decide(TransientError("later"), 0, 2)
    assert (
        settle(
            message, Delivery.of(message), subscription, decision, FakePublisher({1, 2}), "stats"
        )
        is Settled.REJECTED
    )
    assert (message.acks, message.rejects) == ([], [False])


def test_a_dying_worker_thread_ends_the_process_and_readiness_says_so() -> None:
    runtime = ConsumerRuntime("it", "amqp://nowhere", [])
    exits: list[int] = []
    died = threading.Event()

    def exit_process(code: int) -> None:
        exits.append(code)
        died.set()

    runtime.handling.on_death = exit_process
    runtime.handling.work.put("not a work item")  # type: ignore[arg-type]
    runtime.handling.thread.start()
    assert died.wait(2)
    assert exits == [70]
    assert runtime.worker_alive is False


class FaultyProcessor(MessageProcessor):
    """A runtime fault (not a handler's error) on the deliveries whose body is ``b"bug"``."""

    def process_batch(self, subscription: Any, deliveries: Any, stopping: Any = None) -> Any:
        if any(delivery.body == b"bug" for delivery in deliveries):
            raise RuntimeError("a bug in the runtime")
        return super().process_batch(subscription, deliveries, stopping)


def test_a_runtime_fault_dead_letters_only_the_delivery_at_fault() -> None:
    runtime = ConsumerRuntime(
        "it", "amqp://nowhere", [], processor=FaultyProcessor(in_process_attempts=1)
    )
    subscription = Subscription(QUEUE, (UserSignedUp,), handler_for("ok"), lambda events: {})
    good = [Delivery.of(FakeMessage.tagged(tag, user_signed_up().to_json())) for tag in (1, 3)]
    bug = Delivery.of(FakeMessage.tagged(2, b"bug"))
    decisions = runtime.handling.decide(subscription, [good[0], bug, good[1]])
    assert [d.action if d else None for d in decisions] == [
        failures.Action.ACK,
        failures.Action.DEAD_LETTER,
        failures.Action.ACK,
    ]
    assert decisions[1] is not None and decisions[1].kind == failures.UNPROCESSABLE


def test_a_fault_of_the_connection_loop_reconnects_instead_of_ending_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = ConsumerRuntime("it", "amqp://nowhere", [], publisher=FakePublisher(set()))
    stop = threading.Event()
    calls: list[int] = []

    def consume(_stop: Any, _backoff: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        stop.set()

    monkeypatch.setattr(runtime, "_consume", consume)
    # no wait before reconnecting (the delay is Backoff's own tests' subject)
    monkeypatch.setattr(consumer, "Backoff", functools.partial(Backoff, base=0.0))
    runtime.run(stop)
    assert calls == [1, 1] and runtime.handling.generation == 1
