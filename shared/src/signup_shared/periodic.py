"""Background jobs that run every N seconds until stopped (pruning, sweeping)."""

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


def every(
    seconds: float, job: Callable[[], object], stop: threading.Event, name: str
) -> threading.Thread:
    """Run ``job`` every ``seconds`` on a daemon thread; a failing run is logged, not fatal."""

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                job()
            except Exception:
                log.exception("periodic.failed", job=name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
