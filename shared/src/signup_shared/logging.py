"""structlog configuration: key/value events, a correlation id per request or message, no PII.

Every line, ours or a library's (uvicorn, SQLAlchemy, kombu through stdlib ``logging``), goes
through the same masking before it is rendered:

- values under personal keys (``email``, ``phone``, ``full_name``, ...) are masked by key:
  ``j***@example.com``, ``+*********42``, ``J***``. Full names can only be caught this way;
- every other rendered string value, the exception text and the formatted traceback is scrubbed
  by pattern (:func:`signup_shared.redact.redact`): email addresses and phone numbers become
  ``<email>`` / ``<phone>`` wherever they are, ``error=`` values included.

Rendering is built for the hot path: a filtering bound logger (disabled levels cost a no-op
call), loggers cached on first use, plain dict context, JSON by orjson written as bytes to
stderr. The console renderer is used only on a terminal or with ``LOG_FORMAT=console``.
"""

import contextlib
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from datetime import date, datetime
from enum import Enum
from typing import Any, TextIO

import orjson
import structlog

from signup_shared.redact import MIN_LENGTH, redact

PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "to",
        "recipient",
        "recipients",
        "full_name",
        "first_name",
        "last_name",
        "display_name",
    }
)
_EMAIL = re.compile(r"^(?P<first>[^@])[^@]*@(?P<domain>.+)$")
_MAX_DEPTH = 4
_INT_RANGE = range(-(2**63), 2**64)  # what orjson renders as a number
_PLAIN = frozenset({float, bool, uuid.UUID})

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], Any]


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


def scrub(value: object, depth: int = 0) -> object:
    """``value`` made safe to render: strings redacted, containers walked, objects as text.

    Numbers, booleans, None, dates and UUIDs pass as they are (the JSON serializer knows them);
    anything else (an exception, a custom object) becomes its redacted ``str``/``repr`` so that no
    serializer fallback can print personal data later.
    """
    if type(value) is str:
        return redact(value) if len(value) >= MIN_LENGTH else value
    if type(value) is int:
        return value if value in _INT_RANGE else str(value)
    if value is None or type(value) in _PLAIN:
        return value
    if depth >= _MAX_DEPTH:
        return redact(_text(value))
    if isinstance(value, dict):
        return {
            str(key): mask(item) if key in PII_KEYS else scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item, depth + 1) for item in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {_text(value)}")
    if isinstance(value, datetime | date | Enum):
        return value
    return redact(_text(value))


def _text(value: object) -> str:
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def mask_personal_data(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """Mask personal keys by name, scrub every other value by pattern (traceback included)."""
    for key, value in event_dict.items():
        kind = type(value)
        if kind is str:
            event_dict[key] = mask(value) if key in PII_KEYS else redact(value)
        elif kind is not int and kind not in _PLAIN and value is not None:
            event_dict[key] = scrub(value)
        elif kind is int and value not in _INT_RANGE:
            event_dict[key] = str(value)
    return event_dict


def _dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """orjson, and the standard library for what orjson refuses (lone surrogates, huge ints)."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        pass
    try:
        return json.dumps(value, default=repr, ensure_ascii=True, sort_keys=False).encode()
    except (TypeError, ValueError) as exc:  # e.g. a circular container
        return orjson.dumps({"event": "log.unrenderable", "error": type(exc).__name__})


def _json_text(_logger: object, _method: str, event_dict: EventDict) -> str:
    return _dumps(event_dict, default=repr).decode()


def _foreign_record(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """A stdlib record's event dict: its logger name, without ProcessorFormatter's internals."""
    record = event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    if record is not None:
        event_dict["logger"] = record.name
    return event_dict


_LEVEL_OF_METHOD = {"exception": "error", "warn": "warning"}


class _Clock:
    """ISO 8601 UTC timestamps with microseconds, the date and time formatted once a second.

    ``2026-11-25T10:16:04.123456Z``, as ``TimeStamper(fmt="iso", utc=True)`` writes them, at
    about a third of its cost.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str] = (0, "")

    def now(self) -> str:
        now = time.time()
        second = int(now)
        cached = self._second  # one tuple, swapped whole: safe across threads
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"


def _prepare(service: str) -> Processor:
    """Traceback formatted, personal data masked, service, level and time added: one call.

    The same as ``format_exc_info``, ``mask_personal_data``, ``add_log_level`` and a
    ``TimeStamper`` in a row, with the traceback formatted first so that the masking sees it.
    """
    format_exc_info = structlog.processors.format_exc_info
    clock = _Clock()

    def prepare(logger: Any, method: str, event_dict: EventDict) -> EventDict:
        if "exc_info" in event_dict:
            event_dict = format_exc_info(logger, method, event_dict)
        mask_personal_data(logger, method, event_dict)
        event_dict.setdefault("service", service)
        event_dict["level"] = _LEVEL_OF_METHOD.get(method, method)
        event_dict["timestamp"] = clock.now()
        return event_dict

    return prepare


def wants_console(fmt: str, stream: TextIO) -> bool:
    if fmt == "console":
        return True
    if fmt == "json":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Console renderer on a terminal (or ``fmt=console``), JSON lines otherwise, on stderr.

    Also routes stdlib ``logging`` (uvicorn, SQLAlchemy, kombu, ...) through the same masking and
    renderer, at the same level, and turns uvicorn's access log off (requests log themselves).
    """
    stream = sys.stderr
    console = wants_console(fmt, stream)
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _prepare(service),
    ]
    renderer: Any
    logger_factory: Any
    foreign_renderer: Any
    binary = getattr(stream, "buffer", None)
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=wants_console("auto", stream))
        logger_factory = structlog.PrintLoggerFactory(stream)
        foreign_renderer = renderer
    elif binary is not None:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        logger_factory = structlog.BytesLoggerFactory(binary)
        foreign_renderer = _json_text
    else:  # a text-only stream (some test runners): same JSON, written as text
        renderer = _json_text
        logger_factory = structlog.PrintLoggerFactory(stream)
        foreign_renderer = _json_text

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        context_class=dict,
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    _route_stdlib_logging(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_foreign_record, *shared],
            processors=[foreign_renderer],
        ),
        stream,
        numeric_level,
    )


def _route_stdlib_logging(formatter: logging.Formatter, stream: TextIO, level: int) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries speak at WARNING and above (their INFO/DEBUG chatter is not ours to pay for).
    root.setLevel(max(level, logging.WARNING))
    # Libraries log through root from now on; uvicorn's access log is replaced by our own line
    # per request, its error log keeps going (through the masking above).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


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
