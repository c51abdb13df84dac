"""structlog configuration: key/value events, a correlation id per request or message, no PII."""

import contextlib
import logging
import re
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

PII_KEYS = frozenset({"email", "phone", "to", "recipient", "full_name"})
_EMAIL = re.compile(r"^(?P<first>[^@])[^@]*@(?P<domain>.+)$")


def mask(value: object) -> object:
    """Mask personal data: ``j***@example.com``, ``+*********42``."""
    if not isinstance(value, str) or not value:
        return value
    email = _EMAIL.match(value)
    if email:
        return f"{email['first']}***@{email['domain']}"
    if value.startswith("+") and value[1:].isdigit():
        return "+" + "*" * (len(value) - 3) + value[-2:]
    return value[0] + "***"


def mask_personal_data(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in PII_KEYS.intersection(event_dict):
        event_dict[key] = mask(event_dict[key])
    return event_dict


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Console renderer on a terminal (or ``fmt=console``), JSON lines otherwise."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )

    def add_service(
        _logger: object, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_service,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()


def new_correlation_id() -> str:
    return str(uuid.uuid4())


@contextlib.contextmanager
def correlation_scope(correlation_id: str | None, **values: object) -> Iterator[str]:
    """Bind a correlation id (a new one if None) to every log line until the block ends."""
    cid = correlation_id or new_correlation_id()
    tokens = structlog.contextvars.bind_contextvars(correlation_id=cid, **values)
    try:
        yield cid
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def current_correlation_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else None
