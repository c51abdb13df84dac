"""The consumer runtime's metrics of one queue, with every labelled child resolved once.

``prometheus_client``'s ``labels(...)`` costs microseconds (a lock and a dict lookup with label
validation); the runtime counts several things per message, so each queue's children are looked
up once and kept here. The delay and kind children are few (bounded sets) and cached as met.
"""

import threading

from prometheus_client import Counter, Histogram

from signup_shared import metrics

REJECTED = "rejected"
"""The failure kind counted when a message was rejected into its queue's own dead-letter
exchange (no copy could be published; the quorum queue dead-letters it itself)."""


class QueueMetrics:
    """Counters and histograms of one consumer queue."""

    __slots__ = (
        "_dead_lettered",
        "_retried",
        "batch_size",
        "duplicates",
        "duration",
        "handled",
        "queue",
        "received",
    )

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.received: Counter = metrics.MESSAGES_RECEIVED.labels(queue)
        self.handled: Counter = metrics.MESSAGES_HANDLED.labels(queue)
        self.duplicates: Counter = metrics.INBOX_DUPLICATES.labels(queue)
        self.duration: Histogram = metrics.HANDLER_DURATION.labels(queue)
        self.batch_size: Histogram = metrics.BATCH_SIZE.labels(queue)
        self._retried: dict[str, Counter] = {}
        self._dead_lettered: dict[str, Counter] = {}

    def retried(self, delay: str) -> Counter:
        child = self._retried.get(delay)
        if child is None:
            child = self._retried[delay] = metrics.MESSAGES_RETRIED.labels(self.queue, delay)
        return child

    def dead_lettered(self, kind: str) -> Counter:
        child = self._dead_lettered.get(kind)
        if child is None:
            child = self._dead_lettered[kind] = metrics.MESSAGES_DEAD_LETTERED.labels(
                self.queue, kind or "unknown"
            )
        return child


_by_queue: dict[str, QueueMetrics] = {}
_lock = threading.Lock()


def for_queue(queue: str) -> QueueMetrics:
    """The (shared, cached) metrics of ``queue``."""
    found = _by_queue.get(queue)
    if found is not None:
        return found
    with _lock:
        return _by_queue.setdefault(queue, QueueMetrics(queue))
