import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from signup_shared.testing import amqp_url, server_source


@pytest.fixture(scope="session", autouse=True)
def announce_servers(request: pytest.FixtureRequest) -> None:
    if any(item.get_closest_marker("integration") for item in request.session.items):
        print(f"\nintegration servers: {server_source()}")


@pytest.fixture
def broker() -> Iterator[Connection]:
    with Connection(amqp_url()) as connection:
        connection.connect()
        yield connection


@pytest.fixture
def producer() -> str:
    """A producer name of its own, so this test's routing keys reach only its queues."""
    return f"it{uuid.uuid4().hex[:10]}"
