"""What the periodic ``drop-erased --all --every`` reports to Prometheus, and the small HTTP
server (stdlib) that serves it: ``/metrics`` (Prometheus text format 0.0.4) and ``/healthz``.

The tool depends on ``signup_contracts`` only (no ``signup_shared``, no metrics library): the
few series below are written out by hand.

- ``signup_dlq_drop_erased_passes_total{result="done|failed|stopped"}``
- ``signup_dlq_drop_erased_dropped_total{queue}`` and ``..._kept_total{queue}``
- ``signup_dlq_drop_erased_last_success_timestamp_seconds`` (end of the last pass that did not
  fail; 0 before the first): an alert compares it with ``time()``
- ``signup_dlq_drop_erased_last_pass_seconds``
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from signup_dlq.janitor import Sweep

PREFIX = "signup_dlq_drop_erased"
RESULTS = ("done", "failed", "stopped")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class JanitorMetrics:
    """Counts the passes (``record`` is the janitor's ``finished`` callback)."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._wall_clock = wall_clock
        self.passes: Counter[str] = Counter({result: 0 for result in RESULTS})
        self.dropped: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.last_success = 0.0
        self.last_pass_seconds = 0.0

    def record(self, sweep: Sweep) -> None:
        result = "stopped" if sweep.stopped else "failed" if sweep.error else "done"
        with self._lock:
            self.passes[result] += 1
            for walked in sweep.walked:
                self.dropped[walked.queue] += walked.outcome.dropped
                self.kept[walked.queue] += walked.outcome.kept.total()
            self.last_pass_seconds = sweep.seconds
            if result != "failed":
                self.last_success = self._wall_clock()

    def render(self) -> str:
        with self._lock:
            lines = [
                f"# HELP {PREFIX}_passes_total Passes over every dead-letter queue, by result.",
                f"# TYPE {PREFIX}_passes_total counter",
                *(f'{PREFIX}_passes_total{{result="{r}"}} {self.passes[r]}' for r in RESULTS),
            ]
            for name, counts, help_text in (
                ("dropped", self.dropped, "Dead letters of erased users dropped, by queue."),
                ("kept", self.kept, "Dead letters walked and put back, by queue."),
            ):
                lines += [
                    f"# HELP {PREFIX}_{name}_total {help_text}",
                    f"# TYPE {PREFIX}_{name}_total counter",
                    *(
                        f'{PREFIX}_{name}_total{{queue="{_label(q)}"}} {counts[q]}'
                        for q in sorted(counts)
                    ),
                ]
            lines += [
                f"# HELP {PREFIX}_last_success_timestamp_seconds End of the last pass that did "
                "not fail (0: none yet).",
                f"# TYPE {PREFIX}_last_success_timestamp_seconds gauge",
                f"{PREFIX}_last_success_timestamp_seconds {self.last_success}",
                f"# HELP {PREFIX}_last_pass_seconds How long the last pass took.",
                f"# TYPE {PREFIX}_last_pass_seconds gauge",
                f"{PREFIX}_last_pass_seconds {self.last_pass_seconds}",
            ]
        return "\n".join(lines) + "\n"


def serve(metrics: JanitorMetrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread; ``shutdown()`` stops it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind = metrics.render().encode(), "text/plain; version=0.0.4"
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
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
