"""The confirming publisher against the real broker: quiet minutes, dead connections, messages
the client cannot encode."""

import dataclasses
import socket
import time

import pytest
import structlog
from kombu import Queue

from signup_shared.messaging.connection import address
from signup_shared.messaging.publisher import ConfirmingPublisher, PublishError
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import amqp_url, user_signed_up

pytestmark = pytest.mark.integration

SHORT_HEARTBEAT = 2


def message(producer: str) -> OutgoingMessage:
    return OutgoingMessage.from_envelope(user_signed_up(producer))


def drain(queue: Queue) -> list[str]:
    ids = []
    while (got := queue.get(no_ack=True)) is not None:
        ids.append(got.properties["message_id"])
    return ids


def test_a_publisher_quiet_for_more_than_two_heartbeat_intervals_still_publishes(
    queue: Queue, producer: str
) -> None:
    publisher = ConfirmingPublisher(amqp_url(), heartbeat=SHORT_HEARTBEAT)
    try:
        first = message(producer)
        publisher.publish_batch([first])
        connection = publisher._connection
        time.sleep(SHORT_HEARTBEAT * 3 + 1)  # the broker drops a silent client after ~2 intervals
        second = message(producer)
        with structlog.testing.capture_logs() as logs:
            publisher.publish_batch([second])
        assert publisher._connection is connection, "the connection was kept alive, not replaced"
        assert not [entry for entry in logs if entry["log_level"] != "debug"]
        assert drain(queue) == [first.message_id, second.message_id]
    finally:
        publisher.close()


def test_a_publish_on_a_dead_connection_is_sent_again_on_a_fresh_one(
    queue: Queue, producer: str
) -> None:
    publisher = ConfirmingPublisher(amqp_url(), heartbeat=0)  # no timer: nothing notices
    try:
        publisher.publish_batch([message(producer)])
        assert publisher._connection is not None
        publisher._connection.connection.sock.shutdown(socket.SHUT_RDWR)  # the link dies
        again = message(producer)
        with structlog.testing.capture_logs() as logs:
            publisher.publish_batch([again])
        assert again.message_id in drain(queue)
        replaced = [entry for entry in logs if entry["event"] == "publisher.connection_replaced"]
        assert len(replaced) == 1
        assert replaced[0]["broker"] == address(amqp_url())  # host:port, no credentials
        assert replaced[0]["reason"]
    finally:
        publisher.close()


def test_a_message_the_client_cannot_encode_is_refused_alone(queue: Queue, producer: str) -> None:
    publisher = ConfirmingPublisher(amqp_url())
    good = [message(producer) for _ in range(3)]
    bad = dataclasses.replace(good[1], message_id="bad", correlation_id="€" * 100)
    try:
        with pytest.raises(PublishError) as raised:
            publisher.publish_batch([good[0], bad, good[2]])
        assert raised.value.confirmed == {good[0].message_id, good[2].message_id}
        assert set(raised.value.refused) == {"bad"}
        assert "cannot be encoded" in raised.value.refused["bad"]
        assert drain(queue) == [good[0].message_id, good[2].message_id]
        publisher.publish_batch([good[1]])  # the connection is still good
        assert drain(queue) == [good[1].message_id]
    finally:
        publisher.close()
