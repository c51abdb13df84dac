"""The topology on a real broker, in a vhost of this test: retries come back through
``events.retry``, dead letters (published or the quorum queue's own) reach the DLQ through the
topic exchange ``events.dlx``, and a broker declared by older versions is migrated (classic
retry queues and ``events.unrouted`` become quorum queues; a queue holding messages is refused)."""

import time
import urllib.parse
import uuid
from collections.abc import Iterator

import amqp
import httpx
import pytest
from kombu import Connection

from signup_contracts.amqp import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    RETRY_EXCHANGE,
    UNROUTED_EXCHANGE,
)
from signup_shared.messaging import topology
from signup_shared.messaging.topology import ConsumerQueue, TopologyError
from signup_shared.testing import amqp_url

pytestmark = pytest.mark.integration

MANAGEMENT = "http://127.0.0.1:15672"


class Vhost:
    def __init__(self) -> None:
        self.name = f"topo{uuid.uuid4().hex[:10]}"
        url = urllib.parse.urlsplit(amqp_url())
        self.host = f"{url.hostname}:{url.port or 5672}"
        self.auth = (url.username or "guest", url.password or "guest")

    def api(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, MANAGEMENT + path, json=body, auth=self.auth, timeout=30)

    def url(self) -> str:
        return f"amqp://{self.auth[0]}:{self.auth[1]}@{self.host}/{self.name}"

    def channel(self) -> tuple[amqp.Connection, amqp.Channel]:
        connection = amqp.Connection(
            self.host,
            userid=self.auth[0],
            password=self.auth[1],
            virtual_host=self.name,
            connect_timeout=5,
        )
        connection.connect()
        return connection, connection.channel()

    def depth(self, queue: str) -> int:
        connection, channel = self.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        finally:
            connection.close()

    def publish(self, exchange: str, routing_key: str) -> None:
        connection, channel = self.channel()
        try:
            channel.confirm_select()
            channel.basic_publish_confirm(
                amqp.Message(b"{}", delivery_mode=2),
                exchange=exchange,
                routing_key=routing_key,
                mandatory=True,
            )
        finally:
            connection.close()


@pytest.fixture
def vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    assert vhost.api("PUT", f"/api/vhosts/{vhost.name}").status_code in (201, 204)
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    vhost.api("PUT", f"/api/permissions/{vhost.name}/{vhost.auth[0]}", everything)
    try:
        yield vhost
    finally:
        vhost.api("DELETE", f"/api/vhosts/{vhost.name}")


QUEUE = ConsumerQueue("stats", "accounts.user_signed_up", retry_delays_ms=(300, 60_000))


def eventually(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.1)
    return False


def test_retries_come_back_and_dead_letters_reach_the_dlq(vhost: Vhost) -> None:
    with Connection(vhost.url()) as connection:
        topology.declare(connection, [QUEUE])
        topology.declare(connection, [QUEUE])  # idempotent
    vhost.publish(RETRY_EXCHANGE, QUEUE.retry_queue_name(1))
    assert vhost.depth(QUEUE.retry_queue_name(1)) == 1
    assert eventually(lambda: vhost.depth(QUEUE.name) == 1)  # after its 300 ms
    vhost.publish(DEAD_LETTER_EXCHANGE, QUEUE.dlq_name)
    assert vhost.depth(QUEUE.dlq_name) == 1
    connection, channel = vhost.channel()  # the quorum queue's own dead-lettering
    try:
        message = channel.basic_get(QUEUE.name, no_ack=False)
        assert message is not None
        channel.basic_reject(message.delivery_tag, requeue=False)
    finally:
        connection.close()
    assert eventually(lambda: vhost.depth(QUEUE.dlq_name) == 2)
    assert vhost.depth(QUEUE.name) == 0
    assert vhost.api("GET", f"/api/exchanges/{vhost.name}/events.dlx").json()["type"] == "topic"


def test_the_previous_versions_topology_is_migrated_and_a_busy_retry_queue_refused(
    vhost: Vhost,
) -> None:
    connection, channel = vhost.channel()
    try:  # as the previous version declared them
        channel.exchange_declare("events.dlx", "direct", durable=True, auto_delete=False)
        for attempt, delay in enumerate(QUEUE.retry_delays_ms, start=1):
            channel.queue_declare(
                QUEUE.retry_queue_name(attempt),
                durable=True,
                auto_delete=False,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": QUEUE.name,
                },
            )
        channel.basic_publish(
            amqp.Message(b"{}"), exchange="", routing_key=QUEUE.retry_queue_name(2)
        )
    finally:
        connection.close()
    busy = QUEUE.retry_queue_name(2)
    assert eventually(lambda: vhost.depth(busy) == 1)
    with Connection(vhost.url()) as kombu_connection, pytest.raises(TopologyError, match=busy):
        topology.declare(kombu_connection, [QUEUE])
    assert vhost.depth(busy) == 1  # not deleted with its message
    connection, channel = vhost.channel()
    try:
        channel.queue_purge(busy)
    finally:
        connection.close()
    with Connection(vhost.url()) as kombu_connection:
        topology.declare(kombu_connection, [QUEUE])
    queues = {
        q["name"]: q["arguments"]
        for q in vhost.api("GET", f"/api/queues/{vhost.name}?columns=name,arguments").json()
    }
    assert queues[busy]["x-dead-letter-exchange"] == "events.retry"
    assert queues[busy]["x-queue-type"] == "quorum"
    assert vhost.api("GET", f"/api/exchanges/{vhost.name}/events.dlx").json()["type"] == "topic"
    vhost.publish(DEAD_LETTER_EXCHANGE, QUEUE.dlq_name)  # mandatory: it is bound
    assert vhost.depth(QUEUE.dlq_name) == 1


def queue_types(vhost: Vhost) -> dict[str, str]:
    found = vhost.api("GET", f"/api/queues/{vhost.name}?columns=name,type").json()
    return {q["name"]: q["type"] for q in found}


def declare_classic_as_before(vhost: Vhost) -> None:
    """What the version before quorum retry queues declared: the same TTLs and routes, classic."""
    connection, channel = vhost.channel()
    try:
        channel.exchange_declare(UNROUTED_EXCHANGE, "fanout", durable=True, auto_delete=False)
        channel.queue_declare(UNROUTED_EXCHANGE, durable=True, auto_delete=False)
        channel.queue_bind(UNROUTED_EXCHANGE, UNROUTED_EXCHANGE, "")
        for attempt, delay in enumerate(QUEUE.retry_delays_ms, start=1):
            channel.queue_declare(
                QUEUE.retry_queue_name(attempt),
                durable=True,
                auto_delete=False,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": RETRY_EXCHANGE,
                    "x-dead-letter-routing-key": QUEUE.name,
                },
            )
    finally:
        connection.close()


def test_classic_retry_and_unrouted_queues_become_quorum_queues_and_retries_still_return(
    vhost: Vhost,
) -> None:
    declare_classic_as_before(vhost)
    assert queue_types(vhost)[QUEUE.retry_queue_name(1)] == "classic"
    with Connection(vhost.url()) as connection:
        topology.declare(connection, [QUEUE])
    types = queue_types(vhost)
    assert types[UNROUTED_EXCHANGE] == "quorum"
    assert {types[QUEUE.retry_queue_name(n)] for n in (1, 2)} == {"quorum"}
    sent = time.monotonic()
    vhost.publish(RETRY_EXCHANGE, QUEUE.retry_queue_name(1))  # mandatory: it is bound again
    assert eventually(lambda: vhost.depth(QUEUE.name) == 1)  # back in its queue...
    assert time.monotonic() - sent >= 0.3  # ...after its delay (the queue's TTL)
    assert vhost.depth(QUEUE.retry_queue_name(1)) == 0
    vhost.publish(EVENTS_EXCHANGE, "nobody.listens_to_this")  # the alternate exchange's queue
    assert eventually(lambda: vhost.depth(UNROUTED_EXCHANGE) == 1)


@pytest.mark.parametrize("busy", [UNROUTED_EXCHANGE, QUEUE.retry_queue_name(2)])
def test_a_classic_queue_that_holds_messages_is_refused_and_kept(vhost: Vhost, busy: str) -> None:
    declare_classic_as_before(vhost)
    connection, channel = vhost.channel()
    try:
        channel.basic_publish(amqp.Message(b"{}", delivery_mode=2), exchange="", routing_key=busy)
    finally:
        connection.close()
    assert eventually(lambda: vhost.depth(busy) == 1)
    with (
        Connection(vhost.url()) as kombu_connection,
        pytest.raises(TopologyError, match=f"{busy!r}.*holds 1 message.*declare again"),
    ):
        topology.declare(kombu_connection, [QUEUE])
    assert vhost.depth(busy) == 1  # not deleted with its message
    assert queue_types(vhost)[busy] == "classic"


V1_KEY, V2_KEY = "accounts.user_signed_up", "accounts.user_signed_up.v2"


def versioned(service: str, version: int) -> ConsumerQueue:
    reads, other = (V1_KEY, V2_KEY) if version == 1 else (V2_KEY, V1_KEY)
    return ConsumerQueue(service, reads, retry_delays_ms=(60_000,), other_keys=(other,))


def test_a_queue_receives_only_the_version_it_reads_and_switches_by_redeclaring(
    vhost: Vhost,
) -> None:
    with Connection(vhost.url()) as connection:
        topology.declare(connection, [versioned("old", 1), versioned("new", 2)])
    vhost.publish(EVENTS_EXCHANGE, V1_KEY)
    vhost.publish(EVENTS_EXCHANGE, V2_KEY)
    vhost.publish(EVENTS_EXCHANGE, V2_KEY)
    assert eventually(
        lambda: (vhost.depth("old.user_signed_up"), vhost.depth("new.user_signed_up")) == (1, 2)
    )

    with Connection(vhost.url()) as connection:  # "old" restarted with the v2 setting
        topology.declare(connection, [versioned("old", 2)])
    bound = {
        b["routing_key"]
        for b in vhost.api("GET", f"/api/queues/{vhost.name}/old.user_signed_up/bindings").json()
        if b["source"] == EVENTS_EXCHANGE
    }
    assert bound == {V2_KEY}  # bound to v2, unbound from v1; what it held stays
    vhost.publish(EVENTS_EXCHANGE, V1_KEY)  # an outside v1 publisher: nobody bound
    vhost.publish(EVENTS_EXCHANGE, V2_KEY)
    assert eventually(lambda: vhost.depth("old.user_signed_up") == 2)
    assert vhost.depth("new.user_signed_up") == 3
    assert eventually(lambda: vhost.depth(UNROUTED_EXCHANGE) == 1)  # the v1 copy, kept
