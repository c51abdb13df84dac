"""A test kit for teams that consume Signup Platform events (no broker, no pytest needed).

- Factories: a valid event of every published (type, version), with random ids and any payload
  field overridable: ``user_signed_up(plan="team")``, ``build(SpaceProvisioned, quota_bytes=0)``.
- ``InMemoryBroker``: routes published events to handlers by routing key with AMQP topic
  wildcards (``accounts.*``, ``#.user_signed_up``), through the JSON wire format, like
  FastStream's ``TestBroker``.
- ``run_handler``: runs one handler with one event and returns what it published.
- ``redeliver`` / ``assert_effect_once``: the same message delivered again (after a failure or a
  lost ack), and the check that its effect happened once.
- ``wire_message``: the body, routing key, AMQP properties and headers a producer sends.

A handler takes the delivered envelope. It publishes either by returning an envelope (or a list
of them), or by calling ``publish`` of the broker it was given (``functools.partial`` it in).
Handlers may be ``async def``: the synchronous entry points run them in a fresh event loop, and
inside a running loop (an async test) ``await broker.apublish``, ``arun_handler``,
``aredeliver`` and ``aassert_effect_once`` await them in that loop.
With the pytest plugin installed (it is, with this package) the fixtures ``event_broker`` and
``event_factory`` give a fresh broker and these factories.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from signup_contracts.amqp import CONTENT_TYPE, EVENT_VERSION_HEADER, EVENTS_EXCHANGE, PERSISTENT
from signup_contracts.amqp import topic_matches as topic_matches
from signup_contracts.envelope import Envelope, EventData, registered_events
from signup_contracts.events import (
    SpaceProvisioned,
    UserErased,
    UserErasureRequested,
    UserSignedUp,
    UserSignedUpV2,
)
from signup_contracts.inmemory import (
    AsyncHandlerInRunningLoopError,
    Handler,
    InMemoryBroker,
    Subscription,
    arun_handler,
    over_the_wire,
    run_handler,
)
from signup_contracts.redelivery import (
    Delivery,
    Redelivery,
    aassert_effect_once,
    aredeliver,
    assert_effect_once,
    redeliver,
)
from signup_contracts.sealed import UserSignedUpV3, new_key, seal

__all__ = [
    "DEFAULT_PAYLOADS",
    "AsyncHandlerInRunningLoopError",
    "Delivery",
    "EventFactory",
    "Handler",
    "InMemoryBroker",
    "Redelivery",
    "Subscription",
    "WireMessage",
    "aassert_effect_once",
    "aredeliver",
    "arun_handler",
    "assert_effect_once",
    "build",
    "over_the_wire",
    "payload",
    "redeliver",
    "run_handler",
    "space_provisioned",
    "topic_matches",
    "user_signed_up",
    "user_signed_up_v2",
    "wire_message",
]

D = TypeVar("D", bound=EventData)


def _user_signed_up_v1() -> dict[str, Any]:
    return {
        "user_id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "phone": None,
        "plan": "free",
        "signed_up_at": datetime.now(UTC),
    }


def _user_signed_up_v2() -> dict[str, Any]:
    return {**_user_signed_up_v1(), "locale": "en"}


def _user_signed_up_v3() -> dict[str, Any]:
    """Sealed with a throwaway key: a test kit cannot open it (accounts holds the real keys)."""
    v2 = UserSignedUpV2.model_validate(_user_signed_up_v2())
    return seal(v2, new_key(), event_id=uuid.uuid4()).model_dump()


def _space_provisioned_v1() -> dict[str, Any]:
    return {"user_id": uuid.uuid4(), "space_id": uuid.uuid4(), "quota_bytes": 1024**3}


def _user_erasure_requested_v1() -> dict[str, Any]:
    return {"user_id": uuid.uuid4(), "requested_at": datetime.now(UTC)}


def _user_erased_v1() -> dict[str, Any]:
    return {"user_id": uuid.uuid4(), "holder": UserErased.producer, "erased_at": datetime.now(UTC)}


DEFAULT_PAYLOADS: dict[tuple[str, int], Callable[[], dict[str, Any]]] = {
    (UserSignedUp.event_type, UserSignedUp.version): _user_signed_up_v1,
    (UserSignedUpV2.event_type, UserSignedUpV2.version): _user_signed_up_v2,
    (UserSignedUpV3.event_type, UserSignedUpV3.version): _user_signed_up_v3,
    (SpaceProvisioned.event_type, SpaceProvisioned.version): _space_provisioned_v1,
    (UserErasureRequested.event_type, UserErasureRequested.version): _user_erasure_requested_v1,
    (UserErased.event_type, UserErased.version): _user_erased_v1,
}
"""A valid payload of every published (type, version); new ids on every call."""


def payload(event: type[D], **fields: Any) -> D:
    """A valid payload of this type and version with ``fields`` overriding the defaults."""
    defaults = DEFAULT_PAYLOADS.get((event.event_type, event.version))
    if defaults is None:
        raise LookupError(f"no factory for {event.event_type} v{event.version}")
    return event.model_validate({**defaults(), **fields})


def build(
    event: type[D],
    *,
    producer: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    **fields: Any,
) -> Envelope[D]:
    """An envelope as the event's producer publishes it; payload fields as keyword arguments."""
    return Envelope.wrap(
        payload(event, **fields),
        producer=producer or event.producer,
        correlation_id=correlation_id or str(uuid.uuid4()),
        causation_id=causation_id,
        event_id=event_id,
        occurred_at=occurred_at,
    )


def user_signed_up(**overrides: Any) -> Envelope[UserSignedUp]:
    """A ``UserSignedUp`` v1 envelope (``build``'s envelope keywords work too)."""
    return build(UserSignedUp, **overrides)


def user_signed_up_v2(**overrides: Any) -> Envelope[UserSignedUpV2]:
    """A ``UserSignedUp`` v2 envelope (``build``'s envelope keywords work too)."""
    return build(UserSignedUpV2, **overrides)


def space_provisioned(**overrides: Any) -> Envelope[SpaceProvisioned]:
    """A ``SpaceProvisioned`` v1 envelope (``build``'s envelope keywords work too)."""
    return build(SpaceProvisioned, **overrides)


class EventFactory:
    """The factories as one object (the ``event_factory`` fixture)."""

    build = staticmethod(build)
    payload = staticmethod(payload)
    user_signed_up = staticmethod(user_signed_up)
    user_signed_up_v2 = staticmethod(user_signed_up_v2)
    space_provisioned = staticmethod(space_provisioned)

    @staticmethod
    def every_event() -> list[Envelope[Any]]:
        """One envelope of every published (type, version)."""
        return [build(event) for event in registered_events().values()]


@dataclass(frozen=True)
class WireMessage:
    """What the producer hands to RabbitMQ for one event."""

    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]
    headers: dict[str, Any]


def wire_message(event: Envelope[Any]) -> WireMessage:
    """The body, routing key, AMQP properties and headers the producer publishes ``event`` with."""
    return WireMessage(
        exchange=EVENTS_EXCHANGE,
        routing_key=event.routing_key,
        body=event.to_json(),
        properties={
            "content_type": CONTENT_TYPE,
            "delivery_mode": PERSISTENT,
            "message_id": str(event.id),
            "type": event.type,
            "correlation_id": event.correlation_id,
            "app_id": event.producer,
            "timestamp": int(time.time()),
        },
        headers={EVENT_VERSION_HEADER: event.version},
    )
