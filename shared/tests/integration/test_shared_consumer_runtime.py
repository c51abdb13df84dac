import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from amqp import Message as AmqpMessage
from kombu import Connection

from signup_contracts import amqp
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.consumer import ConsumerRuntime, MessageProcessor, Subscription
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue, declare, delete
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import amqp_url, user_signed_up

pytestmark = pytest.mark.integration


class Handler:
    """Fails the events the test asks it to, records the ones it handled."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.plans: dict[str, list[BaseException]] = {}

    def fail(self, event: Envelope[Any], *errors: BaseException) -> None:
        self.plans[str(event.id)] = list(errors)

    def __call__(self, event: Envelope[Any]) -> None:
        errors = self.plans.get(str(event.id))
        if errors:
            raise errors.pop(0)
        self.handled.append(str(event.id))


@pytest.fixture
def consumer_queue(broker: Connection, producer: str) -> Iterator[ConsumerQueue]:
    queue = ConsumerQueue(
        f"{producer}svc", f"{producer}.user_signed_up", retry_delays_ms=(200, 400)
    )
    declare(broker, [queue])
    yield queue
    delete(broker, [queue])


@pytest.fixture
def running(consumer_queue: ConsumerQueue) -> Iterator[tuple[Handler, ConsumerRuntime]]:
    handler = Handler()
    runtime = ConsumerRuntime(
        "it",
        amqp_url(),
        [Subscription(consumer_queue, (UserSignedUp,), handler)],
        processor=MessageProcessor(in_process_attempts=1),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,))
    thread.start()
    wait_for(lambda: runtime.connected)
    yield handler, runtime
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def publish(*events: Envelope[Any], raw: bytes | None = None, routing_key: str = "") -> None:
    publisher = ConfirmingPublisher(amqp_url())
    messages = [OutgoingMessage.from_envelope(event) for event in events]
    if raw is not None:
        messages.append(OutgoingMessage(raw, routing_key, "poison-1", "UserSignedUp", 1, "c", "it"))
    publisher.publish_batch(messages)
    publisher.close()


def dead_letters(broker: Connection, queue: ConsumerQueue) -> list[Any]:
    channel = broker.channel()
    found = []
    while (message := channel.basic_get(queue.dlq_name, no_ack=True)) is not None:
        found.append(message)
    channel.close()
    return found


def test_good_events_are_handled_and_acked(
    running: tuple[Handler, ConsumerRuntime],
    producer: str,
    broker: Connection,
    consumer_queue: ConsumerQueue,
) -> None:
    handler, _ = running
    events = [user_signed_up(producer) for _ in range(20)]
    publish(*events)
    wait_for(lambda: len(handler.handled) == 20)
    assert handler.handled == [str(e.id) for e in events]
    wait_for(
        lambda: (
            broker.default_channel.queue_declare(consumer_queue.name, passive=True).message_count
            == 0
        )
    )


def test_poison_goes_to_the_dlq_with_its_reason_and_good_ones_keep_flowing(
    running: tuple[Handler, ConsumerRuntime],
    producer: str,
    broker: Connection,
    consumer_queue: ConsumerQueue,
) -> None:
    handler, _ = running
    good = user_signed_up(producer)
    publish(good, raw=b"{not json", routing_key=f"{producer}.user_signed_up")
    wait_for(lambda: handler.handled == [str(good.id)])
    wait_for(
        lambda: (
            broker.default_channel.queue_declare(
                consumer_queue.dlq_name, passive=True
            ).message_count
            == 1
        )
    )
    [dead] = dead_letters(broker, consumer_queue)
    headers = dead.headers
    assert dead.body == b"{not json"
    assert headers[amqp.FAILURE_KIND_HEADER] == "permanent"
    assert headers[amqp.ERROR_TYPE_HEADER] == "PoisonMessageError"
    assert "invalid event" in headers[amqp.ERROR_MESSAGE_HEADER]
    assert headers[amqp.ORIGINAL_QUEUE_HEADER] == consumer_queue.name


def test_transient_failure_is_retried_through_the_delay_queue(
    running: tuple[Handler, ConsumerRuntime], producer: str
) -> None:
    handler, _ = running
    event = user_signed_up(producer)
    handler.fail(event, TransientError("smtp 421"))
    started = time.monotonic()
    publish(event)
    wait_for(lambda: handler.handled == [str(event.id)])
    assert time.monotonic() - started >= 0.2


def test_retries_exhausted_or_permanent_end_in_the_dlq(
    running: tuple[Handler, ConsumerRuntime],
    producer: str,
    broker: Connection,
    consumer_queue: ConsumerQueue,
) -> None:
    handler, _ = running
    flaky, refused, fine = (user_signed_up(producer) for _ in range(3))
    handler.fail(flaky, *[TransientError("down")] * 5)
    handler.fail(refused, PermanentError("gateway said 400"))
    publish(flaky, refused, fine)
    wait_for(
        lambda: (
            broker.default_channel.queue_declare(
                consumer_queue.dlq_name, passive=True
            ).message_count
            == 2
        )
    )
    by_id = {m.properties["message_id"]: m.headers for m in dead_letters(broker, consumer_queue)}
    assert by_id[str(flaky.id)][amqp.FAILURE_KIND_HEADER] == "exhausted"
    assert by_id[str(flaky.id)][amqp.ATTEMPTS_HEADER] == 3
    assert by_id[str(refused.id)][amqp.FAILURE_KIND_HEADER] == "permanent"
    assert by_id[str(refused.id)][amqp.ATTEMPTS_HEADER] == 1
    assert handler.handled == [str(fine.id)]


def publish_raw(broker: Connection, routing_key: str, body: bytes, **properties: Any) -> None:
    channel = broker.channel()
    try:
        channel.basic_publish(
            AmqpMessage(body, delivery_mode=2, **properties),
            exchange="events",
            routing_key=routing_key,
        )
    finally:
        channel.close()


def test_hostile_headers_never_stop_the_consumer(
    running: tuple[Handler, ConsumerRuntime],
    producer: str,
    broker: Connection,
    consumer_queue: ConsumerQueue,
) -> None:
    handler, runtime = running
    key = f"{producer}.user_signed_up"
    overflowing, negative, after = (user_signed_up(producer) for _ in range(3))
    handler.fail(overflowing, TransientError("down"))
    handler.fail(negative, TransientError("down"))
    publish_raw(broker, key, b"junk", application_headers={"x-event-version": "abc"})
    publish_raw(
        broker,
        key,
        overflowing.to_json(),
        message_id=str(overflowing.id),
        application_headers={amqp.ATTEMPTS_HEADER: 2**63 - 1, "x-event-version": 1},
    )
    publish_raw(
        broker,
        key,
        negative.to_json(),
        message_id=str(negative.id),
        application_headers={amqp.ATTEMPTS_HEADER: -5, "x-event-version": 1.5},
    )
    publish_raw(
        broker,
        key,
        b"{}",
        correlation_id="c" * 255,
        application_headers={
            amqp.ATTEMPTS_HEADER: 1.5,
            "x-death": [{"count": 2**62, "reason": b"rejected"}],
            "x-delivery-count": "many",
            amqp.FIRST_FAILURE_AT_HEADER: {"a": [b"x", None]},
            "x-price": Decimal("1.25"),
            "x-when": datetime(2026, 1, 1, tzinfo=UTC),
            amqp.ORIGINAL_EXCHANGE_HEADER: 10**300 // 10**282,
        },
    )
    publish_raw(broker, key, b"not zlib", application_headers={"compression": "application/x-gzip"})
    publish_raw(broker, key, b"x", application_headers={"compression": {"a": [1]}})
    publish_raw(
        broker, key, zlib.compress(b"{" * 100_000), application_headers={"compression": "zlib"}
    )
    publish_raw(broker, key, after.to_json(), message_id=str(after.id))

    wait_for(lambda: str(after.id) in handler.handled and str(negative.id) in handler.handled)
    wait_for(
        lambda: (
            broker.default_channel.queue_declare(
                consumer_queue.dlq_name, passive=True
            ).message_count
            == 6
        )
    )
    assert runtime.connected and runtime.worker_alive
    by_body = {m.body: m.headers for m in dead_letters(broker, consumer_queue)}
    assert by_body[b"junk"][amqp.FAILURE_KIND_HEADER] == "permanent"
    assert by_body[b"{}"][amqp.ERROR_TYPE_HEADER] == "PoisonMessageError"
    assert by_body[overflowing.to_json()][amqp.FAILURE_KIND_HEADER] == "exhausted"
    assert by_body[overflowing.to_json()][amqp.ATTEMPTS_HEADER] == 1_000_001


class BatchHandler(Handler):
    """Records each batch; a batch holding a planned failure fails as a whole."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def handle_batch(self, events: Any) -> dict[Any, BaseException]:
        ids = [str(event.id) for event in events]
        if any(self.plans.get(event_id) for event_id in ids):
            raise RuntimeError("one of the batch failed")
        self.batches.append(ids)
        self.handled.extend(ids)
        return {}


def test_a_backlog_is_handled_in_batches_acked_together_and_a_bad_batch_one_by_one(
    broker: Connection, consumer_queue: ConsumerQueue, producer: str
) -> None:
    handler = BatchHandler()
    events = [user_signed_up(producer) for _ in range(60)]
    refused = events[30]
    handler.fail(refused, PermanentError("no"))
    publish(*events)
    wait_for(
        lambda: (
            broker.default_channel.queue_declare(consumer_queue.name, passive=True).message_count
            == 60
        )
    )
    runtime = ConsumerRuntime(
        "it",
        amqp_url(),
        [Subscription(consumer_queue, (UserSignedUp,), handler, handler.handle_batch)],
        processor=MessageProcessor(in_process_attempts=1),
        prefetch=100,
        batch_size=25,
    )
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: len(set(handler.handled)) == 59)
        wait_for(
            lambda: (
                broker.default_channel.queue_declare(
                    consumer_queue.dlq_name, passive=True
                ).message_count
                == 1
            )
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert max(len(batch) for batch in handler.batches) > 1
    assert all(len(batch) <= 25 for batch in handler.batches)
    assert sorted(set(handler.handled)) == sorted(str(e.id) for e in events if e is not refused)
    with Connection(amqp_url()) as fresh:
        queue_state = fresh.default_channel.queue_declare(consumer_queue.name, passive=True)
        assert queue_state.message_count == 0  # everything acked, nothing redelivered
