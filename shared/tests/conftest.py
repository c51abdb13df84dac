import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from signup_shared.testing import amqp_url


@pytest.fixture
def broker() -> Iterator[Connection]:
    with Connection(amqp_url()) as connection:
        connection.connect()
        yield connection


@pytest.fixture
def producer() -> str:
    """A producer name of its own, so this test's routing keys reach only its queues."""
    return f"it{uuid.uuid4().hex[:10]}"
