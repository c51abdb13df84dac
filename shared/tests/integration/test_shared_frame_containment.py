"""Deliveries the AMQP client cannot decode are contained at the frame (issue: one message whose
properties py-amqp could not decode ended every consumer, and the crash loop dead-lettered the
good deliveries it held). Each culprit is published raw: its content-header bytes are encoded
here by hand, since no client library encodes such values."""

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import amqp
import pytest
from kombu import Connection

from signup_contracts import amqp as names
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue, declare, delete
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.settings import LOCAL_AMQP_URL
from signup_shared.testing import amqp_url, user_signed_up

pytestmark = pytest.mark.integration

MESSAGE_ID, TIMESTAMP, HEADERS = 0x0080, 0x0040, 0x2000


def shortstr(value: bytes) -> bytes:
    return struct.pack(">B", len(value)) + value


def table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def nested_table(depth: int) -> bytes:
    inner = table(b"")
    for _ in range(depth):
        inner = table(shortstr(b"a") + b"F" + inner)
    return inner


def timestamp_header(seconds: int) -> bytes:
    return table(shortstr(b"sent-at") + b"T" + struct.pack(">Q", seconds))


CULPRITS = {
    "message_id not UTF-8": (struct.pack(">H", MESSAGE_ID) + shortstr(b"\xff\xfe"), "message_id"),
    "timestamp header 2^62": (
        struct.pack(">H", HEADERS) + timestamp_header(2**62),
        "application_headers",
    ),
    "timestamp header 2^64-1": (
        struct.pack(">H", HEADERS) + timestamp_header(2**64 - 1),
        "application_headers",
    ),
    "headers nested 2,000 deep": (
        struct.pack(">H", HEADERS) + nested_table(2_000),
        "application_headers",
    ),
}


class RawProperties(amqp.Message):  # type: ignore[misc]
    """A message whose property bytes are written as given (py-amqp frames the rest)."""

    def __init__(self, body: bytes, properties: bytes) -> None:
        super().__init__(body)
        self.raw_properties = properties

    def _serialize_properties(self) -> bytes:
        return self.raw_properties


@pytest.fixture
def consumer_queue(broker: Connection, producer: str) -> Iterator[ConsumerQueue]:
    queue = ConsumerQueue(f"{producer}svc", f"{producer}.user_signed_up", retry_delays_ms=(200,))
    declare(broker, [queue])
    yield queue
    delete(broker, [queue])


def start(
    queue: ConsumerQueue, **options: Any
) -> tuple[list[str], ConsumerRuntime, Callable[[], None]]:
    handled: list[str] = []
    runtime = ConsumerRuntime(
        "it",
        amqp_url(),
        [Subscription(queue, (UserSignedUp,), lambda event: handled.append(str(event.id)))],
        processor=MessageProcessor(in_process_attempts=1),
        **options,
    )
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            runtime.run(stop)
        except BaseException as exc:  # the test asserts there is none
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: runtime.connected)

    def finish() -> None:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive() and failed == []

    return handled, runtime, finish


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def publish_raw(queue: ConsumerQueue, messages: list[amqp.Message]) -> None:
    """Straight onto the queue (default exchange), each publish confirmed."""
    url = amqp_url() or LOCAL_AMQP_URL
    with Connection(url) as connection:
        channel = connection.connection.channel()
        channel.confirm_select()
        for message in messages:
            channel.basic_publish(message, exchange="", routing_key=queue.name)
        channel.close()


def depth(broker: Connection, name: str) -> int:
    return int(broker.default_channel.queue_declare(name, passive=True).message_count)


def good(event: Envelope[Any]) -> amqp.Message:
    return OutgoingMessage.from_envelope(event).to_amqp()


@pytest.mark.parametrize("case", list(CULPRITS))
def test_an_undecodable_delivery_is_dead_lettered_with_its_reason_and_neighbours_flow(
    case: str, broker: Connection, producer: str, consumer_queue: ConsumerQueue
) -> None:
    properties, what = CULPRITS[case]
    handled, runtime, finish = start(consumer_queue)
    before, after = user_signed_up(producer), user_signed_up(producer)
    culprit_body = user_signed_up(producer).to_json()

    publish_raw(
        consumer_queue, [good(before), RawProperties(culprit_body, properties), good(after)]
    )

    wait_for(lambda: handled == [str(before.id), str(after.id)])
    wait_for(lambda: depth(broker, consumer_queue.dlq_name) == 1)
    wait_for(lambda: depth(broker, consumer_queue.name) == 0)
    assert runtime.connected and runtime.worker_alive
    assert runtime.handling.generation == 0  # never reconnected: nothing was redelivered
    finish()
    channel = broker.channel()
    dead = channel.basic_get(consumer_queue.dlq_name, no_ack=True)
    channel.close()
    assert dead.body == culprit_body
    assert dead.headers[names.FAILURE_KIND_HEADER] == "permanent"
    assert dead.headers[names.ERROR_TYPE_HEADER] == "UndecodableDeliveryError"
    assert dead.headers[names.ERROR_MESSAGE_HEADER].startswith(f"{what} could not be decoded")
    assert dead.headers[names.ORIGINAL_QUEUE_HEADER] == consumer_queue.name


@pytest.mark.parametrize("seconds", [2**62, 2**64 - 1])
def test_a_timestamp_property_out_of_any_calendar_is_read_as_a_number(
    seconds: int, broker: Connection, producer: str, consumer_queue: ConsumerQueue
) -> None:
    handled, _runtime, finish = start(consumer_queue)
    event = user_signed_up(producer)
    properties = struct.pack(">H", TIMESTAMP) + struct.pack(">Q", seconds)
    publish_raw(consumer_queue, [RawProperties(event.to_json(), properties)])
    wait_for(lambda: handled == [str(event.id)])
    finish()
    assert depth(broker, consumer_queue.dlq_name) == 0


def test_an_idle_consumer_keeps_its_connection_through_several_heartbeat_intervals(
    producer: str, consumer_queue: ConsumerQueue
) -> None:
    handled, runtime, finish = start(consumer_queue, heartbeat=1)
    time.sleep(3.5)  # the broker closes a connection after two missed heartbeats
    event = user_signed_up(producer)
    publish_raw(consumer_queue, [good(event)])
    wait_for(lambda: handled == [str(event.id)])
    assert runtime.handling.generation == 0
    finish()
