"""Batched consumption: one transaction per batch, one multiple ack, one-by-one on failure."""

import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.inbox import InboxMixin
from signup_shared.messaging import failures
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.failures import Action
from signup_shared.messaging.handlers import (
    EventHandler,
    event_handler,
)
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings
from signup_shared.testing import FakeMessage, user_signed_up
from signup_shared.worker import health_checks, queues

QUEUE = ConsumerQueue("svc", "accounts.user_signed_up", retry_delays_ms=(1_000,))


class Recorder:
    """A subscription's handlers: records single events and batches, fails as planned."""

    def __init__(self) -> None:
        self.single: list[Envelope[Any]] = []
        self.batches: list[list[Envelope[Any]]] = []
        self.batch_error: BaseException | None = None
        self.after_commit_errors: dict[uuid.UUID, BaseException] = {}
        self.single_errors: dict[uuid.UUID, BaseException] = {}

    def handle(self, event: Envelope[Any]) -> None:
        self.single.append(event)
        if event.id in self.single_errors:
            raise self.single_errors[event.id]

    def handle_batch(self, events: Sequence[Envelope[Any]]) -> dict[uuid.UUID, BaseException]:
        self.batches.append(list(events))
        if self.batch_error is not None:
            raise self.batch_error
        return self.after_commit_errors

    def subscription(self) -> Subscription:
        return Subscription(QUEUE, (UserSignedUp,), self.handle, self.handle_batch)


def delivery(body: bytes) -> Delivery:
    return Delivery(body, {}, {"message_id": "m"}, "events", "accounts.user_signed_up")


def processor() -> MessageProcessor:
    return MessageProcessor(in_process_attempts=1, max_wait=0.0)


def test_valid_events_go_to_the_batch_handler_once_and_poison_is_decided_alone() -> None:
    recorder = Recorder()
    first, second = user_signed_up(), user_signed_up()
    decisions = processor().process_batch(
        recorder.subscription(),
        [delivery(first.to_json()), delivery(b"junk"), delivery(second.to_json())],
    )
    assert [d.action if d else None for d in decisions] == [
        Action.ACK,
        Action.DEAD_LETTER,
        Action.ACK,
    ]
    assert recorder.batches == [[first, second]]
    assert recorder.single == []


def test_a_failed_batch_is_handled_one_message_at_a_time_with_its_own_fate() -> None:
    recorder = Recorder()
    recorder.batch_error = RuntimeError("deadlock")
    good, refused = user_signed_up(), user_signed_up()
    recorder.single_errors[refused.id] = PermanentError("no")
    decisions = processor().process_batch(
        recorder.subscription(), [delivery(good.to_json()), delivery(refused.to_json())]
    )
    assert [d.action if d else None for d in decisions] == [Action.ACK, Action.DEAD_LETTER]
    assert recorder.single == [good, refused]


def test_after_commit_failures_decide_only_their_own_message() -> None:
    recorder = Recorder()
    fine, refused, flaky = user_signed_up(), user_signed_up(), user_signed_up()
    recorder.after_commit_errors = {
        refused.id: PermanentError("sms 400"),
        flaky.id: TransientError("smtp 421"),
    }
    decisions = processor().process_batch(
        recorder.subscription(),
        [delivery(e.to_json()) for e in (fine, refused, flaky)],
    )
    assert [(d.action, d.kind) if d else None for d in decisions] == [
        (Action.ACK, ""),
        (Action.DEAD_LETTER, "permanent"),
        (Action.RETRY, "transient"),
    ]
    # decided from the batch's own errors: nothing is run again (a slow provider's wait would
    # be paid once more per event, holding back the queue)
    assert recorder.single == []


def test_a_subscription_without_a_batch_handler_is_handled_one_by_one() -> None:
    recorder = Recorder()
    events = [user_signed_up(), user_signed_up()]
    subscription = Subscription(QUEUE, (UserSignedUp,), recorder.handle)
    decisions = processor().process_batch(subscription, [delivery(e.to_json()) for e in events])
    assert [d.action if d else None for d in decisions] == [Action.ACK, Action.ACK]
    assert recorder.single == events


class Publisher:
    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish_batch(self, messages: Any) -> None:
        self.published.extend(messages)


def runtime_for(recorder: Recorder) -> tuple[ConsumerRuntime, Publisher]:
    publisher = Publisher()
    runtime = ConsumerRuntime(
        "svc",
        "amqp://nowhere",
        [recorder.subscription()],
        processor=processor(),
        publisher=publisher,  # type: ignore[arg-type]
        batch_size=10,
    )
    return runtime, publisher


def test_a_batch_is_settled_with_one_multiple_ack_after_the_failures_were_rerouted() -> None:
    recorder = Recorder()
    runtime, publisher = runtime_for(recorder)
    [subscription] = runtime.subscriptions
    events = [user_signed_up() for _ in range(3)]
    messages = [
        FakeMessage.tagged(1, events[0].to_json()),
        FakeMessage.tagged(2, b"junk"),
        FakeMessage.tagged(3, events[1].to_json()),
        FakeMessage.tagged(4, events[2].to_json()),
    ]
    for message in messages:
        runtime._in_flight += 1
        runtime.handling.work.put((0, subscription, message))  # type: ignore[arg-type]
    batch, last = runtime.handling.take_batch(runtime.handling.work.get())  # type: ignore[arg-type]
    assert (len(batch), last) == (4, False)

    _, results = runtime.handling.decide_batch(batch)
    runtime._settle_batch(results)

    assert recorder.batches == [events]
    assert [m.acks for m in messages] == [[], [False], [], [True]]
    assert [copy.routing_key for copy in publisher.published] == ["svc.user_signed_up.dlq"]


def test_held_messages_turn_multiple_acks_off_so_they_stay_unacked() -> None:
    recorder = Recorder()
    runtime, _ = runtime_for(recorder)
    [subscription] = runtime.subscriptions
    held, later = FakeMessage.tagged(1, b""), FakeMessage.tagged(2, b"")
    runtime._settle_batch(
        [
            (subscription, held, Delivery.of(held), None),
            (subscription, later, Delivery.of(later), failures.ACK),
        ]
    )
    assert (held.acks, later.acks) == ([], [False])
    assert runtime._ack_multiple is False


def test_the_batch_size_bounds_what_is_taken_and_a_stop_ends_it() -> None:
    runtime, _ = runtime_for(Recorder())
    runtime.handling.batch_size = 2
    for tag in (1, 2, 3):
        runtime.handling.work.put((0, None, tag))  # type: ignore[arg-type]
    runtime.handling.work.put(None)
    first, last = runtime.handling.take_batch(runtime.handling.work.get())  # type: ignore[arg-type]
    assert ([item[2] for item in first], last) == ([1, 2], False)
    second, last = runtime.handling.take_batch(runtime.handling.work.get())  # type: ignore[arg-type]
    assert ([item[2] for item in second], last) == ([3], True)


@event_handler("accounts", UserSignedUp)
def on_signed_up(session: Any, event: Envelope[Any], *, mailer: list[str]) -> None:
    mailer.append(str(event.id))


def test_a_declaration_names_its_queue_and_injects_its_dependencies_by_name() -> None:
    settings = ServiceSettings(retry_delays=[500], delivery_limit=3)
    assert isinstance(on_signed_up, EventHandler)
    [queue] = queues("mail", settings, [on_signed_up])
    assert (queue.name, queue.routing_key, queue.retry_delays_ms) == (
        "mail.user_signed_up",
        "accounts.user_signed_up",
        (500,),
    )

    with pytest.raises(TypeError, match="mailer"):
        on_signed_up.subscription(queue, None, InboxMixin, {})  # type: ignore[arg-type]


def test_one_declaration_takes_one_event_type() -> None:
    with pytest.raises(ValueError, match="one event type"):
        event_handler("x", UserSignedUp, SpaceProvisioned)(lambda *_: None)


def test_readiness_needs_the_database_the_broker_and_a_living_worker() -> None:
    runtime: Any = SimpleNamespace(connected=True, worker_alive=True)
    checks = health_checks(engine=None, runtime=runtime)  # type: ignore[arg-type]
    assert set(checks) == {"database", "broker", "worker"}
    assert checks["worker"]() is True
    runtime.worker_alive = False
    assert checks["worker"]() is False


def test_exactly_one_info_line_per_handled_message_with_its_correlation_id() -> None:
    recorder = Recorder()
    events = [user_signed_up(), user_signed_up()]
    with capture_logs() as logs:
        processor().process_batch(recorder.subscription(), [delivery(e.to_json()) for e in events])
        processor().process(recorder.subscription(), delivery(events[0].to_json()))
    info = [line for line in logs if line["log_level"] == "info"]
    assert [line["event"] for line in info] == ["message.handled"] * 3
    assert [line["correlation_id"] for line in info[:2]] == [e.correlation_id for e in events]
