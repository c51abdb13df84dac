"""The metrics helpers: outbox figures read at scrape time, timings, the exposition."""

from prometheus_client import CollectorRegistry, Histogram

from signup_shared import metrics


def test_outbox_collector_reports_pending_rows_and_oldest_age() -> None:
    registry = CollectorRegistry()
    registry.register(metrics.OutboxCollector("accounts", lambda: (7, 12.5)))
    labels = {"service": "accounts"}
    assert registry.get_sample_value("signup_outbox_pending_rows", labels) == 7
    assert registry.get_sample_value("signup_outbox_oldest_pending_age_seconds", labels) == 12.5


def test_outbox_collector_reports_nothing_while_the_database_is_away() -> None:
    def unavailable() -> tuple[int, float]:
        raise OSError("connection refused")

    registry = CollectorRegistry()
    registry.register(metrics.OutboxCollector("accounts", unavailable))
    assert registry.get_sample_value("signup_outbox_pending_rows", {"service": "accounts"}) is None
    body, _ = metrics.exposition(registry)
    assert b"signup_outbox_pending_rows" not in body


def test_timed_observes_even_when_the_block_raises() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "test", ["queue"], registry=registry)
    try:
        with metrics.timed(histogram, "q"):
            raise ValueError("boom")
    except ValueError:
        pass
    assert registry.get_sample_value("t_seconds_count", {"queue": "q"}) == 1


def test_exposition_is_prometheus_text() -> None:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    assert b"process_start_time_seconds" in body
