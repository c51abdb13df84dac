"""Micro benchmark, run by hand: cost of one typical ``message.handled`` log line.

    .venv/bin/python tests/bench/bench_logging.py

Each line carries a new correlation id and message id, bound with ``correlation_scope`` as the
consumer does. "before" is the configuration this module replaced (stdlib ``json`` renderer,
text print logger, masking by key name only); "after" is ``configure_logging`` as the services
run it (JSON by orjson as bytes, pattern scrubbing of every value). Output goes to /dev/null,
so the figures are the cost of building, masking and rendering a line, not of the terminal.
"""

import itertools
import logging
import os
import sys
import time
import timeit
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from signup_shared.logging import configure_logging, correlation_scope, mask_personal_data

LINES = 20_000
REPEATS = 5


def configure_before(service: str) -> None:
    """The configuration as it was before issue 7.4 / 8.4 (copied, for comparison)."""

    def add_service(
        _l: object, _m: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_service,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_personal_data_by_key,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def mask_personal_data_by_key(
    _l: object, _m: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in {"email", "phone", "to", "recipient", "full_name"}.intersection(event_dict):
        event_dict[key] = "x***"
    return event_dict


def per_line_us(configure: Callable[[str], None], level: str = "info") -> float:
    structlog.reset_defaults()
    configure("notifications-consume")
    log = structlog.get_logger("bench")
    emit = getattr(log, level)
    queue = "notifications.user_signed_up"
    ids = itertools.cycle([str(uuid.uuid4()) for _ in range(LINES * 2 + 1)])

    def one() -> None:
        # Every line a new message: fresh ids, as in a consumer (no cache helps with these).
        with correlation_scope(next(ids), message_id=next(ids)):
            emit("message.handled", queue=queue, attempt=1, event_type="UserSignedUp")

    one()
    best = min(timeit.repeat(one, number=LINES, repeat=REPEATS, timer=time.process_time))
    return best / LINES * 1e6


def main() -> None:
    real_stderr = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            before = per_line_us(configure_before)
            after = per_line_us(lambda service: configure_logging(service, "INFO", "json"))
            debug_off = per_line_us(
                lambda service: configure_logging(service, "INFO", "json"), "debug"
            )
            structlog.reset_defaults()
            event: dict[str, object] = {
                "event": "message.handled",
                "queue": "notifications.user_signed_up",
                "attempt": 1,
                "event_type": "UserSignedUp",
                "correlation_id": str(uuid.uuid4()),
                "message_id": str(uuid.uuid4()),
            }
            masking = min(
                timeit.repeat(
                    lambda: mask_personal_data(None, "info", dict(event)),
                    number=LINES,
                    repeat=REPEATS,
                    timer=time.process_time,
                )
            )
        finally:
            sys.stderr = real_stderr
            logging.getLogger().handlers.clear()
    print(f"message.handled, JSON, best of {REPEATS} x {LINES:,} lines (CPU time), to /dev/null")
    print(f"  before (json.dumps, print logger, key masking): {before:6.2f} us/line")
    print(f"  after  (orjson bytes, key + pattern masking):   {after:6.2f} us/line")
    print(f"    masking one such event dict (ids seen before): {masking / LINES * 1e6:6.2f} us")
    print(f"  a DEBUG line with the level at INFO:            {debug_off:6.2f} us/line")


if __name__ == "__main__":
    main()
