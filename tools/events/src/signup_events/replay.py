"""Replay: which history events go to which queue of one service, progress and the outcome.

No I/O here: the loop talks to a :class:`ReplayTarget` (``broker.ServiceTarget`` for real, an
in-memory fake in the unit tests). A service's queue for an event type is
``<service>.<event_name>`` (``signup_shared.messaging.topology.ConsumerQueue``: the name does not
depend on the version); a type for which the service has no queue is skipped.
"""

import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from signup_contracts.amqp import event_name
from signup_events.records import EventRecord


def queue_for(service: str, event_type: str) -> str:
    """``queue_for("audit", "UserSignedUp")`` -> ``audit.user_signed_up``."""
    return f"{service}.{event_name(event_type)}"


class ReplayTarget(Protocol):
    """The two broker operations a replay needs, with the service's own credentials."""

    def has_queue(self, queue: str) -> bool:
        """Whether the queue exists (the service subscribes to that event type)."""

    def publish(self, queue: str, message: Any) -> None:
        """Publish a copy of ``message`` into ``queue`` and return once the broker confirmed
        (raises ``PublishFailedError`` if it was returned, nacked or refused)."""


@dataclass
class ReplayOutcome:
    """What a replay did so far (kept current during the loop)."""

    read: int = 0
    replayed: int = 0
    skipped: int = 0
    by_queue: Counter[str] = field(default_factory=Counter)
    last_offset: int | None = None
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Replayer:
    """Sends the events of a range that ``service`` subscribes to into its queues."""

    service: str
    target: ReplayTarget
    types: Collection[str] = ()
    versions: Collection[int] = ()
    dry_run: bool = False
    progress_every: int = 1000
    on_progress: Callable[[ReplayOutcome], None] | None = None
    clock: Callable[[], float] = time.monotonic
    outcome: ReplayOutcome = field(default_factory=ReplayOutcome)
    _queues: dict[str, str | None] = field(default_factory=dict)
    _began: float | None = None

    def queue(self, event_type: str) -> str | None:
        """The service's queue for ``event_type``, or None (looked up once per type)."""
        if event_type not in self._queues:
            name = queue_for(self.service, event_type)
            self._queues[event_type] = name if self.target.has_queue(name) else None
        return self._queues[event_type]

    def wanted(self, record: EventRecord) -> bool:
        return (not self.types or record.type in self.types) and (
            not self.versions or record.version in self.versions
        )

    def handle(self, message: Any, record: EventRecord) -> None:
        if self._began is None:
            self._began = self.clock()
        self.outcome.read += 1
        self.outcome.last_offset = record.offset
        queue = self.queue(record.type) if self.wanted(record) else None
        if queue is None:
            self.outcome.skipped += 1
        else:
            if not self.dry_run:
                self.target.publish(queue, message)
            self.outcome.replayed += 1
            self.outcome.by_queue[queue] += 1
        self.outcome.seconds = self.clock() - self._began
        if self.on_progress is not None and self.outcome.read % self.progress_every == 0:
            self.on_progress(self.outcome)


def progress_line(outcome: ReplayOutcome) -> str:
    return (
        f"read {outcome.read} (offset {outcome.last_offset}), replayed {outcome.replayed}, "
        f"skipped {outcome.skipped}, {outcome.rate:.0f} events/s"
    )


def final_line(service: str, outcome: ReplayOutcome, dry_run: bool) -> str:
    verb = "would replay" if dry_run else "replayed"
    queues = ", ".join(f"{q} {n}" for q, n in sorted(outcome.by_queue.items())) or "no queue"
    return (
        f"{verb} {outcome.replayed} event(s) into {service} ({queues}); skipped "
        f"{outcome.skipped} of {outcome.read} read in {outcome.seconds:.1f} s "
        f"({outcome.rate:.0f} events/s)"
    )
