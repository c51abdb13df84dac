"""The consumer runtime's counting: what it received, handled, retried, dead-lettered, skipped.

The metrics live in the process's registry, so each test uses a queue of its own and compares
the samples before and after.
"""

import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy.orm import DeclarativeBase

from signup_contracts import amqp
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.inbox import InboxMixin
from signup_shared.messaging import failures, queue_metrics
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import PublishError
from signup_shared.messaging.settling import Settled, settle
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.testing import FakeMessage, user_signed_up


def fresh_queue() -> ConsumerQueue:
    return ConsumerQueue(
        f"m{uuid.uuid4().hex[:10]}", "accounts.user_signed_up", retry_delays_ms=(1_000, 250)
    )


def sample(name: str, queue: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"queue": queue, **labels}) or 0.0


class FakePublisher:
    def __init__(self, failing_calls: frozenset[int] = frozenset()) -> None:
        self.failing_calls = failing_calls
        self.calls = 0
        self.published: list[Any] = []

    def publish_batch(self, messages: Any) -> None:
        self.calls += 1
        if self.calls in self.failing_calls:
            raise PublishError("broker connection failed: refused")
        self.published.extend(messages)

    def send(self, messages: Any) -> Any:
        raise NotImplementedError

    def wait(self, ticket: Any) -> None:
        raise NotImplementedError


class Handlers:
    """Fails the events named in ``errors``; the batch handler fails if any event of it does."""

    def __init__(self) -> None:
        self.errors: dict[uuid.UUID, BaseException] = {}

    def handle(self, event: Envelope[Any]) -> None:
        if event.id in self.errors:
            raise self.errors[event.id]

    def handle_batch(self, events: Any) -> dict[uuid.UUID, BaseException]:
        for event in events:
            self.handle(event)
        return {}


def runtime_for(queue: ConsumerQueue, handlers: Handlers) -> tuple[ConsumerRuntime, Subscription]:
    subscription = Subscription(queue, (UserSignedUp,), handlers.handle, handlers.handle_batch)
    runtime = ConsumerRuntime(
        "svc",
        "amqp://nowhere",
        [subscription],
        processor=MessageProcessor(in_process_attempts=1, max_wait=0.0),
        publisher=FakePublisher(),
        batch_size=10,
    )
    return runtime, subscription


def run_batch(
    runtime: ConsumerRuntime, subscription: Subscription, messages: list[FakeMessage]
) -> None:
    """Deliver as kombu would (through the dispatcher), handle as one batch, settle."""
    dispatch = runtime._dispatcher(subscription)
    for message in messages:
        dispatch(message)  # type: ignore[arg-type]
    batch, _ = runtime.handling.take_batch(runtime.handling.work.get())  # type: ignore[arg-type]
    _, results = runtime.handling.decide_batch(batch)
    runtime._settle_batch(results)


def test_a_batch_counts_received_handled_dead_lettered_its_size_and_its_duration() -> None:
    queue = fresh_queue()
    runtime, subscription = runtime_for(queue, Handlers())
    events = [user_signed_up() for _ in range(3)]
    messages = [
        FakeMessage.tagged(1, events[0].to_json()),
        FakeMessage.tagged(2, b"junk"),
        FakeMessage.tagged(3, events[1].to_json()),
        FakeMessage.tagged(4, events[2].to_json()),
    ]

    run_batch(runtime, subscription, messages)

    name = queue.name
    assert sample("signup_messages_received_total", name) == 4
    assert sample("signup_messages_handled_total", name) == 3
    assert sample("signup_messages_dead_lettered_total", name, kind="permanent") == 1
    assert sample("signup_batch_size_count", name) == 1
    assert sample("signup_batch_size_sum", name) == 4
    assert sample("signup_handler_duration_seconds_count", name) == 1


def test_transient_failures_count_as_retried_by_delay_then_dead_lettered_as_exhausted() -> None:
    queue = fresh_queue()
    handlers = Handlers()
    runtime, subscription = runtime_for(queue, handlers)
    first, second, third = user_signed_up(), user_signed_up(), user_signed_up()
    for event in (first, second, third):
        handlers.errors[event.id] = TransientError("provider busy")
    messages = [
        FakeMessage.tagged(1, first.to_json()),
        FakeMessage.tagged(2, second.to_json(), {amqp.ATTEMPTS_HEADER: 1}),
        FakeMessage.tagged(3, third.to_json(), {amqp.ATTEMPTS_HEADER: 2}),
    ]

    run_batch(runtime, subscription, messages)

    name = queue.name
    assert sample("signup_messages_retried_total", name, delay="1s") == 1
    assert sample("signup_messages_retried_total", name, delay="250ms") == 1
    assert sample("signup_messages_dead_lettered_total", name, kind="exhausted") == 1
    assert sample("signup_messages_handled_total", name) == 0
    assert all(message.acks == [False] for message in messages)  # acked after each copy


def test_held_messages_are_not_counted_as_handled() -> None:
    queue = fresh_queue()
    runtime, subscription = runtime_for(queue, Handlers())
    held, done = FakeMessage.tagged(1, b""), FakeMessage.tagged(2, b"")
    results: list[Any] = [
        (subscription, held, Delivery.of(held), None),
        (subscription, done, Delivery.of(done), failures.ACK),
    ]
    runtime._settle_batch(results)
    assert sample("signup_messages_handled_total", queue.name) == 1


def test_a_copy_that_cannot_be_published_counts_as_unprocessable_or_rejected() -> None:
    queue = fresh_queue()
    subscription = Subscription(queue, (UserSignedUp,), Handlers().handle)
    decision = failures.decide(PermanentError("bad"), 0, 2)

    refused_once, refused_twice = FakeMessage.tagged(1, b"junk"), FakeMessage.tagged(2, b"junk")
    assert (
        settle(
            refused_once,
            Delivery.of(refused_once),
            subscription,
            decision,
            FakePublisher(frozenset({1})),
            "svc",
        )
        is Settled.DEAD_LETTERED
    )
    assert (
        settle(
            refused_twice,
            Delivery.of(refused_twice),
            subscription,
            decision,
            FakePublisher(frozenset({1, 2})),
            "svc",
        )
        is Settled.REJECTED
    )

    name = queue.name
    assert sample("signup_messages_dead_lettered_total", name, kind="unprocessable") == 1
    assert sample("signup_messages_dead_lettered_total", name, kind="rejected") == 1
    assert sample("signup_messages_dead_lettered_total", name, kind="permanent") == 0


class Base(DeclarativeBase):
    pass


class Inbox(InboxMixin, Base):
    pass


def test_labelled_children_are_resolved_once_per_queue() -> None:
    metrics = queue_metrics.for_queue("cached.q")
    assert queue_metrics.for_queue("cached.q") is metrics
    assert metrics.retried("1s") is metrics.retried("1s")
    assert metrics.dead_lettered("permanent") is metrics.dead_lettered("permanent")
