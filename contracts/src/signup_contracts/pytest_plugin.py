"""pytest plugin of ``signup-contracts`` (entry point ``pytest11``): event kit fixtures.

- ``event_broker``: a fresh ``InMemoryBroker`` for the test.
- ``event_factory``: the event factories (``event_factory.user_signed_up(plan="pro")``).
"""

import pytest

from signup_contracts.testing import EventFactory, InMemoryBroker


@pytest.fixture
def event_broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
def event_factory() -> EventFactory:
    return EventFactory()
