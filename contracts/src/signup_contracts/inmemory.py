"""The in-memory broker of the test kit, for synchronous and ``async def`` handlers.

``InMemoryBroker`` routes published events to handlers by routing key with AMQP topic wildcards
(``accounts.*``, ``#.user_signed_up``), through the JSON wire format, like FastStream's
``TestBroker``. Import it from ``signup_contracts.testing``.

A handler takes the delivered envelope and may be a plain function or an ``async def`` one (or
return any awaitable). From synchronous code (``publish``, ``run_handler``) an async handler runs
to completion in a fresh event loop; from inside a running event loop (an async test) use the
awaitable forms ``apublish`` and ``arun_handler``, which await it in the running loop.
"""

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from signup_contracts.amqp import topic_matches
from signup_contracts.envelope import Envelope, parse_envelope

Handler = Callable[[Envelope[Any]], object]


class AsyncHandlerInRunningLoopError(RuntimeError):
    """A synchronous entry point met an ``async def`` handler inside a running event loop."""


def over_the_wire(event: Envelope[Any]) -> Envelope[Any]:
    """The envelope a consumer decodes from the event's JSON body (validated, typed payload)."""
    return parse_envelope(event.to_json())


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


def settle(result: object) -> object:
    """A handler's result; an awaitable one is run to completion in a fresh event loop."""
    if not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(result))
    if inspect.iscoroutine(result):
        result.close()  # no "coroutine was never awaited" warning on top of the error
    raise AsyncHandlerInRunningLoopError(
        "an async handler was called from synchronous code inside a running event loop: "
        "use `await broker.apublish(event)` or `await arun_handler(handler, event)`"
    )


async def asettle(result: object) -> object:
    """A handler's result, awaited in the running loop when it is awaitable."""
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass
class Subscription:
    pattern: str
    handler: Handler
    name: str
    received: list[Envelope[Any]] = field(default_factory=list)


class InMemoryBroker:
    """Topic routing in memory: every subscription whose pattern matches gets the event.

    Delivery is in publishing order: ``publish`` (or ``await apublish``) returns once every
    handler (and every handler of what those published) has run. A handler's exception
    propagates to the ``publish`` call, and the deliveries still pending are dropped. Events no
    subscription matches are kept in ``unrouted``, as the ``events`` exchange's alternate
    exchange does. A handler may publish on the broker with either form while it runs.
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
        if self._enqueue(event):
            self._deliver()

    async def apublish(self, event: Envelope[Any]) -> None:
        """``publish`` for async code: async handlers are awaited in the running loop."""
        if self._enqueue(event):
            await self._adeliver()

    def published_with(self, pattern: str) -> list[Envelope[Any]]:
        """Published events whose routing key matches ``pattern``."""
        return [event for event in self.published if topic_matches(pattern, event.routing_key)]

    def _enqueue(self, event: Envelope[Any]) -> bool:
        """Route ``event``; True when the caller must deliver (no delivery is under way)."""
        delivered = over_the_wire(event)
        self.published.append(delivered)
        targets = [s for s in self.subscriptions if topic_matches(s.pattern, delivered.routing_key)]
        if not targets:
            self.unrouted.append(delivered)
        self._pending.extend((subscription, delivered) for subscription in targets)
        return not self._delivering

    def _deliver(self) -> None:
        self._delivering = True
        try:
            while self._pending:
                subscription, event = self._pending.pop(0)
                subscription.received.append(event)
                for result in returned(settle(subscription.handler(event))):
                    self.publish(result)
        finally:
            self._delivering = False
            self._pending.clear()

    async def _adeliver(self) -> None:
        self._delivering = True
        try:
            while self._pending:
                subscription, event = self._pending.pop(0)
                subscription.received.append(event)
                for result in returned(await asettle(subscription.handler(event))):
                    await self.apublish(result)
        finally:
            self._delivering = False
            self._pending.clear()


def returned(result: object) -> list[Envelope[Any]]:
    """The envelopes a handler returned (None, one, or an iterable of them)."""
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
    broker the handler was built with). Returned events are published on ``broker`` too. An
    ``async def`` handler runs in a fresh event loop (inside a running one: ``arun_handler``).
    """
    bus = broker if broker is not None else InMemoryBroker()
    before = len(bus.published)
    for result in returned(settle(handler(over_the_wire(event)))):
        bus.publish(result)
    return bus.published[before:]


async def arun_handler(
    handler: Handler, event: Envelope[Any], *, broker: InMemoryBroker | None = None
) -> list[Envelope[Any]]:
    """``run_handler`` for async code: an async handler is awaited in the running loop."""
    bus = broker if broker is not None else InMemoryBroker()
    before = len(bus.published)
    for result in returned(await asettle(handler(over_the_wire(event)))):
        await bus.apublish(result)
    return bus.published[before:]
