from collections.abc import Iterator

import pytest
from kombu import Connection, Queue

from signup_shared.messaging.topology import declare, events_exchange


@pytest.fixture
def queue(broker: Connection, producer: str) -> Iterator[Queue]:
    """A queue of this test's own, bound to everything its ``producer`` publishes on ``events``."""
    declare(broker)
    bound = Queue(
        f"{producer}.events",
        events_exchange,
        routing_key=f"{producer}.#",
        durable=False,
        auto_delete=False,
    )(broker.default_channel)
    bound.declare()
    yield bound
    bound.delete()
