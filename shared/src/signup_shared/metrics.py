"""Prometheus metrics of every process, served at ``/metrics`` on its health port.

Each process has its own registry (the default one, with prometheus_client's process and
platform collectors, so ``process_start_time_seconds`` reveals restarts). Names follow the
Prometheus conventions: ``signup_`` prefix, base units, ``_total`` for counters. Labels are
bounded sets (queue names, failure kinds, routes as templates), never ids or addresses.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)

MESSAGES_RECEIVED = Counter(
    "signup_messages_received_total", "Deliveries taken from a queue.", ["queue"]
)
MESSAGES_HANDLED = Counter(
    "signup_messages_handled_total", "Deliveries handled and acked after commit.", ["queue"]
)
MESSAGES_RETRIED = Counter(
    "signup_messages_retried_total",
    "Failed deliveries sent to a delay queue, by delay.",
    ["queue", "delay"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "signup_messages_dead_lettered_total",
    "Deliveries sent to the dead-letter queue, by failure kind.",
    ["queue", "kind"],
)
INBOX_DUPLICATES = Counter(
    "signup_inbox_duplicates_total",
    "Redelivered events skipped because the inbox had them already.",
    ["queue"],
)
HANDLER_DURATION = Histogram(
    "signup_handler_duration_seconds",
    "Time to handle a batch of deliveries (transaction included).",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "signup_batch_size",
    "Deliveries handled together in one transaction.",
    ["queue"],
    buckets=BATCH_BUCKETS,
)
RELAY_PUBLISHED = Counter(
    "signup_relay_published_total", "Outbox rows published and confirmed.", ["service"]
)
RELAY_PUBLISH_SECONDS = Histogram(
    "signup_relay_publish_seconds",
    "Time to write one batch of outbox rows to the broker.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
RELAY_CONFIRM_SECONDS = Histogram(
    "signup_relay_confirm_seconds",
    "Time from writing a batch to having every confirm.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "signup_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "signup_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - start)


OutboxBacklog = Callable[[], tuple[int, float]]


class OutboxCollector(Collector):
    """Outbox rows pending and the age of the oldest, read from the database at scrape time."""

    def __init__(self, service: str, backlog: OutboxBacklog) -> None:
        self.service = service
        self.backlog = backlog

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "signup_outbox_pending_rows", "Outbox rows not yet confirmed.", labels=["service"]
        )
        oldest = GaugeMetricFamily(
            "signup_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet confirmed (0 when none).",
            labels=["service"],
        )
        try:
            count, age = self.backlog()
        except Exception:  # the database is away: report nothing rather than fail the scrape
            return []
        pending.add_metric([self.service], count)
        oldest.add_metric([self.service], age)
        return [pending, oldest]


def register(collector: Collector) -> None:
    REGISTRY.register(collector)


def unregister(collector: Collector) -> None:
    REGISTRY.unregister(collector)


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
