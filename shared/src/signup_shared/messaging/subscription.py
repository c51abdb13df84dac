"""What the runtime consumes: one queue, the event payloads it accepts and its handlers."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signup_shared.events import Envelope, EventData
from signup_shared.messaging.topology import ConsumerQueue

Handler = Callable[[Envelope[Any]], None]
BatchHandler = Callable[[Sequence[Envelope[Any]]], Mapping[uuid.UUID, BaseException]]
"""Handles many events in one transaction. Raises if the transaction failed (the runtime then
handles the batch one message at a time); returns, by event id, the errors of events whose
after-commit work failed (those messages alone are retried or dead-lettered)."""


@dataclass(frozen=True)
class Subscription:
    """One queue of a service, the event payloads it accepts and the handlers that take them.

    ``handler`` takes one event (and is what a failed batch falls back to); ``batch_handler``,
    if given, takes every event of a batch at once.
    """

    queue: ConsumerQueue
    events: tuple[type[EventData], ...]
    handler: Handler
    batch_handler: BatchHandler | None = None
