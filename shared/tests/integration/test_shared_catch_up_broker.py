"""Catch-up on a real broker, in a vhost of this test: events published before the live queue
existed come from the history, events published while the catch-up runs come from the history
or the live queue or both, and an inbox (here: a set of ids under a lock, like the table's
unique key) makes each take effect once. Each signup is published as accounts does: a clear v2
copy (for the live queue) and a sealed v3 copy of the same id (what the history keeps), which
the runtime opens with the user's key (a fake keys service) before the handler. Also the edges:
an empty history and a start after the tail end at once."""

import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kombu import Connection

from signup_contracts import UserSignedUpV2, seal_envelope
from signup_contracts.amqp import HISTORY_STREAM
from signup_contracts.sealed import new_key
from signup_contracts.testing import user_signed_up_v2
from signup_shared.events import Envelope
from signup_shared.messaging import history_stream, topology
from signup_shared.messaging.catch_up import CatchUp
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.unseal import Unsealer
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.settings import HistorySettings
from signup_shared.testing import amqp_url

pytestmark = pytest.mark.integration

MANAGEMENT = "http://127.0.0.1:15672"
QUEUE = ConsumerQueue("audit", "accounts.user_signed_up.v2")
KEYS: dict[uuid.UUID, bytes] = {}  # user id -> data key: the fake keys service's


class FakeKeys:
    def lookup(self, user_ids: Any) -> dict[uuid.UUID, bytes | None]:
        return {user: KEYS.get(user) for user in user_ids}

    def close(self) -> None:
        pass


def processor() -> MessageProcessor:
    return MessageProcessor(in_process_attempts=1, unsealer=Unsealer(FakeKeys()))


class Vhost:
    def __init__(self) -> None:
        self.name = f"hist{uuid.uuid4().hex[:10]}"
        url = urllib.parse.urlsplit(amqp_url())
        self.host = f"{url.hostname}:{url.port or 5672}"
        self.auth = (url.username or "guest", url.password or "guest")

    def api(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, MANAGEMENT + path, json=body, auth=self.auth, timeout=30)

    def url(self) -> str:
        return f"amqp://{self.auth[0]}:{self.auth[1]}@{self.host}/{self.name}"


@pytest.fixture
def vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    assert vhost.api("PUT", f"/api/vhosts/{vhost.name}").status_code in (201, 204)
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    vhost.api("PUT", f"/api/permissions/{vhost.name}/{vhost.auth[0]}", everything)
    with Connection(vhost.url()) as connection:
        topology.declare(connection)
        history_stream.declare_history(connection, HistorySettings(replicas=1))
    try:
        yield vhost
    finally:
        vhost.api("DELETE", f"/api/vhosts/{vhost.name}")


class Inbox:
    """What the inbox table does for a handler: the first copy of an id takes effect."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.effects: dict[uuid.UUID, int] = {}
        self.duplicates = 0

    def handle(self, envelope: Envelope[Any]) -> None:
        assert isinstance(envelope.data, UserSignedUpV2)  # opened before the handler
        assert str(envelope.data.email) == "ada@example.com"
        with self.lock:
            if envelope.id in self.effects:
                self.duplicates += 1
                return
            self.effects[envelope.id] = 1


def publish(url: str, count: int, pause: float = 0.0) -> list[uuid.UUID]:
    publisher = ConfirmingPublisher(url)
    ids = []
    try:
        for _ in range(count):
            event = user_signed_up_v2()
            KEYS[event.data.user_id] = key = new_key()
            copies = [event, seal_envelope(event, key)]  # the live copy, the history's
            publisher.publish_batch([OutgoingMessage.from_envelope(c) for c in copies])
            ids.append(event.id)
            if pause:
                time.sleep(pause)
    finally:
        publisher.close()
    return ids


def job(url: str, inbox: Inbox, start: Any = "first", margin: float = 0.5) -> CatchUp:
    return CatchUp(
        "audit",
        url,
        [Subscription(QUEUE, (UserSignedUpV2,), inbox.handle)],
        start,
        ConfirmingPublisher(url),
        processor=processor(),
        batch_size=50,
        margin=margin,
    )


def test_no_gap_and_no_double_while_events_keep_arriving(vhost: Vhost) -> None:
    url = vhost.url()
    before = publish(url, 300)  # nobody's queue exists yet: only the history keeps them
    inbox = Inbox()
    during: list[uuid.UUID] = []
    publishing = threading.Thread(target=lambda: during.extend(publish(url, 300, 0.002)))
    publishing.start()  # across the binding, the margin, the tail and the replay
    report = job(url, inbox).run(threading.Event())
    publishing.join(timeout=60)

    assert report.complete and report.tail is not None and report.tail >= 299
    assert report.last_offset == report.tail
    runtime = ConsumerRuntime(
        "audit",
        url,
        [Subscription(QUEUE, (UserSignedUpV2,), inbox.handle)],
        processor=processor(),
    )
    stop = threading.Event()
    live = threading.Thread(target=runtime.run, args=(stop,))
    live.start()
    everything = set(before) | set(during)
    deadline = time.monotonic() + 30
    while set(inbox.effects) != everything and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything more that would arrive
    stop.set()
    live.join(timeout=30)

    assert len(everything) == 600
    assert set(inbox.effects) == everything  # no gap
    assert all(count == 1 for count in inbox.effects.values())  # no double
    assert inbox.duplicates > 0  # the overlap was there, and absorbed


def test_an_empty_history_ends_at_once(vhost: Vhost) -> None:
    inbox = Inbox()
    report = job(vhost.url(), inbox, margin=0).run(threading.Event())

    assert report.complete and report.tail is None and report.handled == 0


def test_a_start_after_the_tail_reads_nothing(vhost: Vhost) -> None:
    publish(vhost.url(), 5)
    inbox = Inbox()
    report = job(vhost.url(), inbox, start=1_000, margin=0).run(threading.Event())

    assert report.complete and report.tail == 4 and report.handled == 0 and not inbox.effects


def test_from_an_offset_it_reads_that_event_and_the_ones_after(vhost: Vhost) -> None:
    ids = publish(vhost.url(), 10)
    inbox = Inbox()
    report = job(vhost.url(), inbox, start=6, margin=0).run(threading.Event())

    assert report.complete and report.tail == 9
    assert set(ids[6:]) <= set(inbox.effects)  # a chunk may start earlier: harmless overlap
    assert report.handled <= 10


def test_a_broker_without_the_history_is_named(vhost: Vhost) -> None:
    with Connection(vhost.url()) as connection:
        channel = connection.channel()
        channel.queue_delete(HISTORY_STREAM)
        channel.close()
    with pytest.raises(Exception, match=r"events\.history"):
        job(vhost.url(), Inbox(), margin=0).run(threading.Event())


def test_declaring_the_history_removes_the_catch_all_binding_of_earlier_versions(
    vhost: Vhost,
) -> None:
    def keys() -> list[str]:
        found = vhost.api("GET", f"/api/bindings/{vhost.name}").json()
        return sorted(
            b["routing_key"]
            for b in found
            if b["destination"] == HISTORY_STREAM and b["source"] == "events"
        )

    with Connection(vhost.url()) as connection:
        connection.channel().queue_bind(HISTORY_STREAM, "events", "#")  # as earlier versions
        assert "#" in keys()
        history_stream.declare_history(connection, HistorySettings(replicas=1))
    assert keys() == list(history_stream.history_routing_keys())
