"""Redelivery in the test kit: the same message handled more than once, as RabbitMQ does.

Delivery is at least once. RabbitMQ delivers a message again when the consumer did not ack it:
the handler failed (the consumer nacked and requeued it, or sent it to a retry queue), or the
consumer died after doing the work and before its ack reached the broker. Either way the handler
sees the same message again: the same ``id``, the same body. A correct consumer does its work
once (it deduplicates on ``event.id``, an inbox table for instance).

- ``redeliver(handler, event, times=2)``: deliver the same message ``times`` times; a delivery
  whose handler raises is recorded (the broker would requeue it) and the next one follows.
- ``assert_effect_once(handler, event, effect)``: ``redeliver``, then fail unless the last
  delivery succeeded, ``effect()`` (what the test observes: rows in a fake repository, emails
  sent) is the same after the last delivery as after the first successful one, and no delivery
  after that one published anything.

Both run ``async def`` handlers too; from inside a running event loop use ``aredeliver`` and
``aassert_effect_once``. Import them from ``signup_contracts.testing``.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signup_contracts.envelope import Envelope
from signup_contracts.inmemory import Handler, InMemoryBroker, arun_handler, run_handler

Effect = Callable[[], object]


@dataclass(frozen=True)
class Delivery:
    """One delivery of the message: what the handler published, or the error it raised."""

    attempt: int
    published: list[Envelope[Any]]
    error: Exception | None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Redelivery:
    """Every delivery of one message, in order."""

    event: Envelope[Any]
    deliveries: list[Delivery]
    first_effect: object = None
    last_effect: object = None

    @property
    def published(self) -> list[Envelope[Any]]:
        """Everything the handler published, over all deliveries."""
        return [event for delivery in self.deliveries for event in delivery.published]

    @property
    def errors(self) -> list[Exception]:
        return [d.error for d in self.deliveries if d.error is not None]

    def first_success(self) -> Delivery | None:
        return next((d for d in self.deliveries if d.succeeded), None)


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")


def redeliver(
    handler: Handler, event: Envelope[Any], *, times: int = 2, broker: InMemoryBroker | None = None
) -> Redelivery:
    """Deliver the same message ``times`` times; errors are recorded, not raised."""
    _check_times(times)
    bus = broker if broker is not None else InMemoryBroker()
    deliveries = []
    for attempt in range(1, times + 1):
        before = len(bus.published)
        try:
            run_handler(handler, event, broker=bus)
        except Exception as error:
            deliveries.append(Delivery(attempt, bus.published[before:], error))
        else:
            deliveries.append(Delivery(attempt, bus.published[before:], None))
    return Redelivery(event, deliveries)


async def aredeliver(
    handler: Handler, event: Envelope[Any], *, times: int = 2, broker: InMemoryBroker | None = None
) -> Redelivery:
    """``redeliver`` for async code: async handlers are awaited in the running loop."""
    _check_times(times)
    bus = broker if broker is not None else InMemoryBroker()
    deliveries = []
    for attempt in range(1, times + 1):
        before = len(bus.published)
        try:
            await arun_handler(handler, event, broker=bus)
        except Exception as error:
            deliveries.append(Delivery(attempt, bus.published[before:], error))
        else:
            deliveries.append(Delivery(attempt, bus.published[before:], None))
    return Redelivery(event, deliveries)


def _observed(handler: Handler, effect: Effect) -> tuple[Handler, list[object]]:
    """``handler`` wrapped so that ``effect()`` is recorded after every successful delivery."""
    seen: list[object] = []

    def observed(event: Envelope[Any]) -> object:
        result = handler(event)
        if inspect.isawaitable(result):
            pending = result

            async def then_observe() -> object:
                value = await pending
                seen.append(effect())
                return value

            return then_observe()
        seen.append(effect())
        return result

    return observed, seen


def _verdict(redelivery: Redelivery, seen: list[object]) -> Redelivery:
    count = len(redelivery.deliveries)
    last = redelivery.deliveries[-1]
    if last.error is not None:
        raise AssertionError(
            f"the last of {count} deliveries failed, so the message would never be acked: "
            f"{last.error!r}"
        ) from last.error
    first = redelivery.first_success()
    assert first is not None  # the last delivery succeeded
    if seen[0] != seen[-1]:
        raise AssertionError(
            f"the effect changed when the message was delivered again (delivery {first.attempt}"
            f" of {count}: {seen[0]!r}, after the last: {seen[-1]!r}): deduplicate on event.id"
        )
    again = [d for d in redelivery.deliveries[first.attempt :] if d.published]
    if again:
        names = ", ".join(f"{e.type} (delivery {d.attempt})" for d in again for e in d.published)
        raise AssertionError(
            f"the handler published again when the message was delivered again: {names}"
        )
    return Redelivery(redelivery.event, redelivery.deliveries, seen[0], seen[-1])


def assert_effect_once(
    handler: Handler,
    event: Envelope[Any],
    effect: Effect,
    *,
    times: int = 2,
    broker: InMemoryBroker | None = None,
) -> Redelivery:
    """Deliver the message ``times`` times and assert its effect happened once (module doc)."""
    observed, seen = _observed(handler, effect)
    return _verdict(redeliver(observed, event, times=times, broker=broker), seen)


async def aassert_effect_once(
    handler: Handler,
    event: Envelope[Any],
    effect: Effect,
    *,
    times: int = 2,
    broker: InMemoryBroker | None = None,
) -> Redelivery:
    """``assert_effect_once`` for async code: async handlers are awaited in the running loop."""
    observed, seen = _observed(handler, effect)
    return _verdict(await aredeliver(observed, event, times=times, broker=broker), seen)
