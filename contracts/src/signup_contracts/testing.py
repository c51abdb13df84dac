"""A test kit for teams that consume Signup Platform events (no broker, no pytest needed).

- Factories: a valid event of every published (type, version), with random ids and any payload
  field overridable: ``user_signed_up(plan="team")``, ``build(SpaceProvisioned, quota_bytes=0)``.
- ``InMemoryBroker``: routes published events to handlers by routing key with AMQP topic
  wildcards (``accounts.*``, ``#.user_signed_up``), through the JSON wire format, like
  FastStream's ``TestBroker``.
- ``run_handler``: runs one handler with one event and returns what it published.
- ``wire_message``: the body, routing key, AMQP properties and headers a producer sends.

A handler takes the delivered envelope. It publishes either by returning an envelope (or a list
of them), or by calling ``publish`` of the broker it was given (``functools.partial`` it in).
With the pytest plugin installed (it is, with this package) the fixtures ``event_broker`` and
``event_factory`` give a fresh broker and these factories.
"""

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from signup_contracts.amqp import CONTENT_TYPE, EVENT_VERSION_HEADER, EVENTS_EXCHANGE, PERSISTENT
from signup_contracts.amqp import topic_matches as topic_matches
from signup_contracts.envelope import Envelope, EventData, parse_envelope, registered_events
from signup_contracts.events import SpaceProvisioned, UserSignedUp

D = TypeVar("D", bound=EventData)
Handler = Callable[[Envelope[Any]], object]


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


def _space_provisioned_v1() -> dict[str, Any]:
    return {"user_id": uuid.uuid4(), "space_id": uuid.uuid4(), "quota_bytes": 1024**3}


DEFAULT_PAYLOADS: dict[tuple[str, int], Callable[[], dict[str, Any]]] = {
    (UserSignedUp.event_type, UserSignedUp.version): _user_signed_up_v1,
    (SpaceProvisioned.event_type, SpaceProvisioned.version): _space_provisioned_v1,
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


def space_provisioned(**overrides: Any) -> Envelope[SpaceProvisioned]:
    """A ``SpaceProvisioned`` v1 envelope (``build``'s envelope keywords work too)."""
    return build(SpaceProvisioned, **overrides)


class EventFactory:
    """The factories as one object (the ``event_factory`` fixture)."""

    build = staticmethod(build)
    payload = staticmethod(payload)
    user_signed_up = staticmethod(user_signed_up)
    space_provisioned = staticmethod(space_provisioned)

    @staticmethod
    def every_event() -> list[Envelope[Any]]:
        """One envelope of every published (type, version)."""
        return [build(event) for event in registered_events().values()]


def over_the_wire(event: Envelope[Any]) -> Envelope[Any]:
    """The envelope a consumer decodes from the event's JSON body (validated, typed payload)."""
    return parse_envelope(event.to_json())


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


@dataclass
class Subscription:
    pattern: str
    handler: Handler
    name: str
    received: list[Envelope[Any]] = field(default_factory=list)


class InMemoryBroker:
    """Topic routing in memory: every subscription whose pattern matches gets the event.

    Delivery is synchronous and in publishing order: ``publish`` returns once every handler
    (and every handler of what those published) has run. A handler's exception propagates to
    the ``publish`` call, and the deliveries still pending are dropped. Events no subscription
    matches are kept in ``unrouted``, as the ``events`` exchange's alternate exchange does.
    """

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self.published: list[Envelope[Any]] = []
        self.unrouted: list[Envelope[Any]] = []
        self._pending: list[tuple[Subscription, Envelope[Any]]] = []
        self._delivering = False

    def subscribe(self, pattern: str, handler: Handler, *, name: str | None = None) -> Subscription:
        """Deliver events whose routing key matches ``pattern`` to ``handler``."""
        label = name or str(getattr(handler, "__name__", pattern))
        subscription = Subscription(pattern, handler, label)
        self.subscriptions.append(subscription)
        return subscription

    def subscriber(self, pattern: str, *, name: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator form of ``subscribe``."""

        def register(handler: Handler) -> Handler:
            self.subscribe(pattern, handler, name=name)
            return handler

        return register

    def publish(self, event: Envelope[Any]) -> None:
        """Publish one event (validated through its JSON form) and deliver it."""
        delivered = over_the_wire(event)
        self.published.append(delivered)
        targets = [s for s in self.subscriptions if topic_matches(s.pattern, delivered.routing_key)]
        if not targets:
            self.unrouted.append(delivered)
        self._pending.extend((subscription, delivered) for subscription in targets)
        if not self._delivering:
            self._deliver()

    def published_with(self, pattern: str) -> list[Envelope[Any]]:
        """Published events whose routing key matches ``pattern``."""
        return [event for event in self.published if topic_matches(pattern, event.routing_key)]

    def _deliver(self) -> None:
        self._delivering = True
        try:
            while self._pending:
                subscription, event = self._pending.pop(0)
                subscription.received.append(event)
                for result in _returned(subscription.handler(event)):
                    self.publish(result)
        finally:
            self._delivering = False
            self._pending.clear()


def _returned(result: object) -> list[Envelope[Any]]:
    if result is None:
        return []
    if isinstance(result, Envelope):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes):
        items = list(result)
        if all(isinstance(item, Envelope) for item in items):
            return items
    raise TypeError(f"a handler returns None, an Envelope or Envelopes, not {result!r}")


def run_handler(
    handler: Handler, event: Envelope[Any], *, broker: InMemoryBroker | None = None
) -> list[Envelope[Any]]:
    """Run ``handler`` with ``event`` as a consumer would receive it; return what it published.

    Published means returned by the handler or published on ``broker`` while it ran (pass the
    broker the handler was built with). Returned events are published on ``broker`` too.
    """
    bus = broker if broker is not None else InMemoryBroker()
    before = len(bus.published)
    for result in _returned(handler(over_the_wire(event))):
        bus.publish(result)
    return bus.published[before:]
