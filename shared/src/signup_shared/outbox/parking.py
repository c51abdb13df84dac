"""Parked outbox rows in the metrics: how many were parked, how many wait for an operator.

Alert when ``signup_outbox_parked_rows > 0``: each parked row is an event not delivered until an
operator looks at it (``<service> outbox parked``) and puts it back in line (``... retry``).
"""

from collections.abc import Callable, Iterable

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RELAY_PARKED = Counter(
    "signup_relay_parked_total",
    "Outbox rows the relay parked because they cannot be published.",
    ["service"],
)


class ParkedCollector(Collector):
    """Outbox rows parked and not yet retried, read from the database at scrape time."""

    def __init__(self, service: str, parked: Callable[[], int]) -> None:
        self.service = service
        self.parked = parked

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "signup_outbox_parked_rows",
            "Outbox rows parked because they cannot be published (waiting for an operator).",
            labels=["service"],
        )
        try:
            count = self.parked()
        except Exception:  # the database is away: report nothing rather than fail the scrape
            return []
        gauge.add_metric([self.service], count)
        return [gauge]
