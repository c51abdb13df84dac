"""The consumer runtime and the publisher on the three-node cluster: failover between nodes.

A quorum queue gets three replicas; a consumer given the three nodes in AMQP_URL keeps handling
events after the node it is connected to stops its app (it reconnects to another node), and
nothing published with confirms is lost. Its connection carries its process's name.
"""

import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kombu import Connection

from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.connection import default_connection_name
from signup_shared.messaging.consumer import ConsumerRuntime, MessageProcessor, Subscription
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue, declare
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import user_signed_up

from .conftest import Cluster

pytestmark = pytest.mark.integration


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.1)


class Handler:
    def __init__(self) -> None:
        self.handled: list[str] = []

    def __call__(self, event: Envelope[Any]) -> None:
        self.handled.append(str(event.id))


def publish(urls: str, events: list[Envelope[Any]]) -> None:
    publisher = ConfirmingPublisher(urls)
    try:
        publisher.publish_batch([OutgoingMessage.from_envelope(e) for e in events])
    finally:
        publisher.close()


def consumer_nodes(cluster: Cluster, vhost: str) -> set[str]:
    quoted = urllib.parse.quote(vhost, safe="")
    rows = cluster.api("GET", f"/api/consumers/{quoted}")
    return {row["channel_details"]["node"] for row in rows}


@pytest.fixture
def consumer(cluster: Cluster, cluster_vhost: str) -> Iterator[tuple[Handler, ConsumerQueue]]:
    queue = ConsumerQueue("failover", "producer.user_signed_up", retry_delays_ms=(200,))
    urls = cluster.urls(cluster_vhost)
    with Connection(urls) as connection:
        declare(connection, [queue])
    handler = Handler()
    runtime = ConsumerRuntime(
        "failover",
        urls,
        [Subscription(queue, (UserSignedUp,), handler)],
        processor=MessageProcessor(in_process_attempts=1),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: runtime.connected, what="the consumer connected")
    yield handler, queue
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_quorum_queues_have_three_replicas_on_three_nodes(
    cluster: Cluster, cluster_vhost: str, consumer: tuple[Handler, ConsumerQueue]
) -> None:
    _, queue = consumer
    [row] = [r for r in cluster.quorum_queues(cluster_vhost) if r["name"] == queue.name]
    assert sorted(row["members"]) == sorted(cluster.nodes)
    assert row["leader"] in cluster.nodes


def test_connections_are_named_after_their_process(
    cluster: Cluster, cluster_vhost: str, consumer: tuple[Handler, ConsumerQueue]
) -> None:
    def names() -> set[str]:
        rows = cluster.api("GET", f"/api/vhosts/{cluster_vhost}/connections")
        return {row.get("client_properties", {}).get("connection_name") for row in rows}

    # The management API lists a connection once its statistics were first emitted (≤ 5 s).
    wait_for(lambda: default_connection_name() in names(), what="the named connection listed")


def test_the_consumer_fails_over_when_its_node_stops(
    cluster: Cluster, cluster_vhost: str, consumer: tuple[Handler, ConsumerQueue]
) -> None:
    handler, _ = consumer
    urls = cluster.urls(cluster_vhost)
    before = [user_signed_up("producer") for _ in range(50)]
    publish(urls, before)
    wait_for(lambda: len(set(handler.handled)) == 50, what="50 events handled")

    wait_for(lambda: consumer_nodes(cluster, cluster_vhost), what="a consumer on the dashboard")
    [node] = consumer_nodes(cluster, cluster_vhost)
    cluster.ctl(node, "stop_app")
    try:
        wait_for(
            lambda: (found := consumer_nodes(cluster, cluster_vhost)) and node not in found,
            timeout=60,
            what="the consumer on another node",
        )
        after = [user_signed_up("producer") for _ in range(50)]
        publish(urls, after)  # confirmed by the two nodes that still run
        wanted = {str(e.id) for e in before + after}
        wait_for(lambda: wanted <= set(handler.handled), timeout=60, what="100 events handled")
        assert set(handler.handled) == wanted  # redeliveries possible, nothing lost, no stranger
    finally:
        cluster.ctl(node, "start_app")
        cluster.ctl(node, "await_startup")
    cluster.wait_healthy(cluster_vhost, timeout=120)
