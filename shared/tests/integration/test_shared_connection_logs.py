"""A connection that cannot be opened, or is lost, is logged with the broker's address (host and
port, never the credentials) beside the reason: "Connection refused" alone names no server."""

import socket
import threading
from typing import Any

import pytest
import structlog
from kombu.exceptions import OperationalError

from signup_shared.events import UserSignedUp
from signup_shared.messaging.connection import connect
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.testing import FakePublisher

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A local port nothing listens on (bound, then released: connecting is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_address_that_refuses_is_logged_with_its_reason_and_no_password() -> None:
    first, second = closed_port(), closed_port()
    url = f"amqp://svc:s3cret@127.0.0.1:{first}//;amqp://svc:s3cret@127.0.0.1:{second}//"
    with structlog.testing.capture_logs() as logs, pytest.raises(OperationalError):
        connect(url, timeout=2)
    unreachable = [entry for entry in logs if entry["event"] == "broker.unreachable"]
    assert sorted(entry["broker"] for entry in unreachable) == sorted(
        [f"127.0.0.1:{first}", f"127.0.0.1:{second}"]
    )  # the last address tried too, for which kombu calls no errback
    assert all("refused" in entry["error"].lower() for entry in unreachable)
    assert "s3cret" not in repr(logs)


def test_the_consumer_says_which_broker_it_cannot_reach() -> None:
    port = closed_port()
    url = f"amqp://svc:s3cret@127.0.0.1:{port}//"
    runtime = ConsumerRuntime(
        "svc",
        url,
        [Subscription(ConsumerQueue("svc", "accounts.user_signed_up"), (UserSignedUp,), noop)],
        publisher=FakePublisher(),
    )
    stop = threading.Event()
    with structlog.testing.capture_logs() as logs:
        threading.Timer(0.3, stop.set).start()
        runtime.run(stop)
    [disconnected, *_] = [entry for entry in logs if entry["event"] == "consumer.disconnected"]
    assert disconnected["broker"] == f"127.0.0.1:{port}"
    assert "refused" in disconnected["error"].lower()
    assert "s3cret" not in repr(logs)


def noop(*_args: Any) -> None:
    return None
