"""The migration window end to end below the broker: accounts writes ``UserSignedUp`` v2 and v1
of one signup with one event id; a consumer subscribed to both versions, through the shared
runtime's inbox on the real PostgreSQL, acts once, whether the copies arrive in one batch or in
two, in either order. The copies are the outbox rows ``sign_up`` wrote, delivered through the
contracts test kit's in-memory broker (their JSON wire form).
"""

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts import actions
from accounts.actions import NewSignup
from accounts.models import InboxMessage, OutboxMessage, Plan
from signup_contracts import UserSignedUpV2, upcast
from signup_contracts.testing import InMemoryBroker, wire_message
from signup_shared.errors import PoisonMessageError
from signup_shared.events import Envelope, UserSignedUp, parse_envelope
from signup_shared.messaging.delivery import Delivery, decode
from signup_shared.messaging.handlers import batch_exactly_once, event_handler, exactly_once
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue

pytestmark = pytest.mark.integration
CONSUMER = "welcomer.user_signed_up"


class Welcomer:
    """A consumer that has moved to v2: it reads the locale (v1 reads as ``en``)."""

    def __init__(self) -> None:
        self.welcomed: list[tuple[str, str, int]] = []

        @event_handler("accounts", UserSignedUp, UserSignedUpV2)
        def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
            data = upcast(event.data)
            self.welcomed.append((str(data.email), data.locale, event.version))

        self.declared = on_user_signed_up
        self.one = exactly_once(CONSUMER, InboxMessage, on_user_signed_up.step)
        self.batch = batch_exactly_once(CONSUMER, InboxMessage, on_user_signed_up.step)


def copies(session: Session, locale: str = "de") -> list[Envelope[Any]]:
    """Sign Grace up (both versions published) and read back the outbox rows, in order (the
    clear copies: the sealed v3 one goes to the history only, no live queue reads it)."""
    signup = NewSignup("grace@example.com", "Grace Hopper", Plan.PRO, locale=locale)
    actions.sign_up(session, signup, correlation_id="c", versions=(2, 1))
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.position)).all()
    assert [row.version for row in rows] == [2, 1, 3]
    return [parse_envelope(row.payload) for row in rows if row.version != 3]


def claimed(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(InboxMessage)) or 0)


def test_both_copies_in_one_batch_act_once_with_the_first(session: Session) -> None:
    welcomer = Welcomer()
    v2, v1 = copies(session)
    assert (v2.version, v1.version, v2.id) == (2, 1, v1.id)
    new = welcomer.batch(session, [v2, v1], persist=None)
    assert [event.version for event in new] == [2]
    assert welcomer.welcomed == [("grace@example.com", "de", 2)]
    assert claimed(session) == 1


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["v2-first", "v1-first"])
def test_copies_in_two_batches_act_once_whichever_comes_first(
    session: Session, order: tuple[int, int]
) -> None:
    welcomer = Welcomer()
    events = copies(session)
    first, second = (events[i] for i in order)
    welcomer.batch(session, [first], persist=None)
    welcomer.one(session, second, persist=None)
    expected_locale = "de" if first.version == 2 else "en"  # v1 carries none: the default
    assert welcomer.welcomed == [("grace@example.com", expected_locale, first.version)]
    assert claimed(session) == 1


def test_through_the_test_kit_broker_redelivered_copies_act_once(session: Session) -> None:
    welcomer = Welcomer()
    events = copies(session, locale="fr")
    broker = InMemoryBroker()
    for key in ("accounts.user_signed_up.v2", "accounts.user_signed_up"):  # while it switches
        broker.subscribe(key, lambda e: welcomer.one(session, e, persist=None))
    for event in [*events, *reversed(events)]:  # both copies, then both again
        broker.publish(event)
    assert welcomer.welcomed == [("grace@example.com", "fr", 2)]
    assert claimed(session) == 1


def deliver(events: Sequence[type[Any]], event: Envelope[Any]) -> Envelope[Any]:
    """What the runtime makes of ``event``'s wire message for a subscription to ``events``."""
    wire = wire_message(event)
    queue = ConsumerQueue("welcomer", "accounts.user_signed_up")
    subscription = Subscription(queue, tuple(events), lambda _event: None)
    return decode(
        subscription,
        Delivery(wire.body, wire.headers, wire.properties, wire.exchange, wire.routing_key),
    )


def test_the_runtime_takes_both_versions_for_a_subscription_to_both(session: Session) -> None:
    welcomer = Welcomer()
    v2, v1 = copies(session)
    assert deliver(welcomer.declared.events, v2) == v2
    assert deliver(welcomer.declared.events, v1) == v1


def test_a_subscription_to_v1_alone_refuses_the_v2_copy(session: Session) -> None:
    """Why every consumer subscribes to both versions while both are published: the copies
    share one queue, and a version the subscription does not name is poison there."""
    v2, _v1 = copies(session)
    with pytest.raises(PoisonMessageError, match="v2"):
        deliver((UserSignedUp,), v2)
