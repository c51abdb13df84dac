"""What the periodic ``drop-erased --all --every`` reports to Prometheus, and the small HTTP
server (stdlib) that serves it: ``/metrics`` (prometheus_client's exposition) and ``/healthz``.

The series (a registry of the process's own, so a test can hold several):

- ``signup_dlq_drop_erased_passes_total{result="done|failed|stopped"}``
- ``signup_dlq_drop_erased_dropped_total{queue}`` and ``..._kept_total{queue}``
- ``signup_dlq_drop_erased_last_success_timestamp_seconds`` (end of the last pass that did not
  fail; 0 before the first): an alert compares it with ``time()``
- ``signup_dlq_drop_erased_last_pass_seconds``
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from signup_dlq.janitor import Sweep

PREFIX = "signup_dlq_drop_erased"
RESULTS = ("done", "failed", "stopped")


class JanitorMetrics:
    """Counts the passes (``record`` is the janitor's ``finished`` callback)."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.passes = Counter(
            f"{PREFIX}_passes",
            "Passes over every dead-letter queue, by result.",
            ["result"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.passes.labels(result)
        self.dropped = Counter(
            f"{PREFIX}_dropped",
            "Dead letters of erased users dropped, by queue.",
            ["queue"],
            registry=self.registry,
        )
        self.kept = Counter(
            f"{PREFIX}_kept",
            "Dead letters walked and put back, by queue.",
            ["queue"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "End of the last pass that did not fail (0: none yet).",
            registry=self.registry,
        )
        self.last_pass_seconds = Gauge(
            f"{PREFIX}_last_pass_seconds", "How long the last pass took.", registry=self.registry
        )

    def record(self, sweep: Sweep) -> None:
        result = "stopped" if sweep.stopped else "failed" if sweep.error else "done"
        self.passes.labels(result).inc()
        for walked in sweep.walked:
            self.dropped.labels(walked.queue).inc(walked.outcome.dropped)
            self.kept.labels(walked.queue).inc(walked.outcome.kept.total())
        self.last_pass_seconds.set(sweep.seconds)
        if result != "failed":
            self.last_success.set(self._wall_clock())

    def render(self) -> str:
        return generate_latest(self.registry).decode()


def serve(metrics: JanitorMetrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread; ``shutdown()`` stops it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind = metrics.render().encode(), CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                body, kind = b"ok\n", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every scrape is no news

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
