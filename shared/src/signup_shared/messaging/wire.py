"""Events on the wire: JSON bodies whose AMQP properties mirror the envelope."""

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from amqp import Message
from pydantic import ValidationError

from signup_contracts.amqp import (
    CONTENT_TYPE,
    EVENT_VERSION_HEADER,
    EVENTS_EXCHANGE,
    PERSISTENT,
    SHORTSTR_BYTES,
)
from signup_shared.errors import PoisonMessageError
from signup_shared.events import Envelope, UnknownEventError, parse_envelope

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "OutgoingMessage",
    "header_int",
    "parse_event",
    "sanitize_headers",
    "sanitize_value",
    "short_text",
]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_HEADER_DEPTH = 8
MAX_HEADER_ITEMS = 256


@dataclass(frozen=True)
class OutgoingMessage:
    """One event ready to publish: the envelope's JSON and the properties mirrored from it."""

    body: bytes
    routing_key: str
    message_id: str
    type: str
    version: int
    correlation_id: str
    producer: str
    exchange: str = EVENTS_EXCHANGE
    headers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(
        cls, envelope: Envelope[Any], exchange: str = EVENTS_EXCHANGE
    ) -> "OutgoingMessage":
        return cls(
            body=envelope.to_json(),
            routing_key=envelope.routing_key,
            message_id=str(envelope.id),
            type=envelope.type,
            version=envelope.version,
            correlation_id=envelope.correlation_id,
            producer=envelope.producer,
            exchange=exchange,
        )

    def amqp_headers(self) -> dict[str, Any]:
        """The AMQP headers: the event's version, then ``headers``."""
        return {EVENT_VERSION_HEADER: self.version, **self.headers}

    def to_amqp(self, timestamp: int | None = None) -> Message:
        """py-amqp's message (``timestamp`` in seconds, now if not given)."""
        return Message(
            self.body,
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            message_id=self.message_id,
            type=self.type,
            correlation_id=self.correlation_id,
            app_id=self.producer,
            timestamp=int(time.time()) if timestamp is None else timestamp,
            application_headers=self.amqp_headers(),
        )


def parse_event(body: bytes) -> Envelope[Any]:
    """Body -> validated envelope, or ``PoisonMessageError`` saying what is wrong with it."""
    try:
        return parse_envelope(body)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise PoisonMessageError(f"invalid event: {details}") from exc
    except UnknownEventError as exc:
        raise PoisonMessageError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise PoisonMessageError(f"body is not UTF-8: {exc}") from exc


# Headers are input too: any client may put any AMQP type in any header. The helpers below read
# them without ever raising, and make a copy the broker will accept when we publish it again.


def short_text(value: object, limit: int = SHORTSTR_BYTES) -> str:
    """``value`` as text of at most ``limit`` UTF-8 bytes (AMQP short strings); never raises."""
    try:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def header_int(value: object, default: int = 0, *, low: int = 0, high: int = 1_000_000) -> int:
    """A whole number read from a header, clamped to ``[low, high]``; ``default`` if it is none.

    Accepts ints and integral finite floats and short decimal strings; bools, nan, inf, tables,
    arrays and anything else give ``default``.
    """
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        try:
            if math.isfinite(value) and value == int(value):
                number = int(value)
        except (ValueError, OverflowError, ArithmeticError):
            number = None
    elif isinstance(value, str | bytes) and 0 < len(value) <= 20:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in ("-", "+") else stripped
        if digits.isascii() and digits.isdigit():
            number = int(stripped)
    if number is None:
        return default
    return max(low, min(high, number))


def sanitize_value(value: object, depth: int = 0) -> Any:
    """A value the broker (and py-amqp's encoder) accepts, or a text rendering of it.

    Non-finite floats and integers beyond 64 bits become text; nesting deeper than
    ``MAX_HEADER_DEPTH`` or wider than ``MAX_HEADER_ITEMS`` is cut.
    """
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else short_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else short_text(value)
    if isinstance(value, Decimal):
        try:
            _sign, digits, exponent = value.as_tuple()
            if isinstance(exponent, int) and -255 <= exponent <= 0 and len(digits) <= 9:
                return value
        except Exception:  # noqa: S110 - an odd Decimal is rendered as text below
            pass
        return short_text(value)
    if isinstance(value, datetime):
        try:
            value.utctimetuple()
            return value
        except Exception:
            return short_text(value)
    if depth >= MAX_HEADER_DEPTH:
        return short_text(value)
    if isinstance(value, Mapping):
        return sanitize_headers(value, depth + 1)
    if isinstance(value, list | tuple):
        return [sanitize_value(item, depth + 1) for item in list(value)[:MAX_HEADER_ITEMS]]
    return short_text(value)


def sanitize_headers(headers: object, depth: int = 0) -> dict[str, Any]:
    """A copy of an AMQP table that can be published again; anything but a mapping is ``{}``."""
    if not isinstance(headers, Mapping):
        return {}
    clean: dict[str, Any] = {}
    try:
        items = list(headers.items())[:MAX_HEADER_ITEMS]
    except Exception:
        return {}
    for key, value in items:
        name = short_text(key)
        if name:
            clean[name] = sanitize_value(value, depth)
    return clean
