"""Turning dead letters and bodies into text and JSON-safe values (no I/O, no rich).

Everything that ends up on the operator's terminal comes from untrusted messages, so text is
made printable (control characters escaped) before it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from signup_dlq.deadletter import (
    DEAD_LETTERED_BY_BROKER,
    DEAD_LETTERED_BY_CONSUMER,
    DeadLetter,
    RawMessage,
    decode_dead_letter,
    parse_json_body,
)

BODY_REPR_MAX_CHARS: Final = 500
BODY_JSON_MAX_CHARS: Final = 4000
TEXT_MAX_CHARS: Final = 2000
ELLIPSIS: Final = "…"
MISSING: Final = "-"


@dataclass(frozen=True)
class RenderedBody:
    """A body prepared for display."""

    size: int
    is_json: bool
    text: str
    truncated: bool
    value: Any = None  # the parsed JSON value when is_json


def printable(text: str, max_chars: int = TEXT_MAX_CHARS) -> str:
    """``text`` with control characters escaped (no terminal escapes get through), truncated."""
    cleaned = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    if len(cleaned) > max_chars:
        return cleaned[:max_chars] + ELLIPSIS
    return cleaned


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 MiB``..."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def render_body(
    body: bytes,
    *,
    repr_max_chars: int = BODY_REPR_MAX_CHARS,
    json_max_chars: int = BODY_JSON_MAX_CHARS,
) -> RenderedBody:
    """Pretty JSON if the body is JSON, else a truncated ``repr`` of the bytes."""
    is_json, value = parse_json_body(body)
    if is_json:
        try:
            pretty = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
        except (ValueError, RecursionError):  # pragma: no cover - parsed JSON always dumps
            is_json = False
        else:
            pretty = printable_json(pretty)
            if len(pretty) > json_max_chars:
                return RenderedBody(
                    len(body), True, pretty[:json_max_chars] + ELLIPSIS, True, value
                )
            return RenderedBody(len(body), True, pretty, False, value)
    text = repr(body[: repr_max_chars + 1])
    truncated = len(text) > repr_max_chars or len(body) > repr_max_chars
    if len(text) > repr_max_chars:
        text = text[:repr_max_chars]
    if truncated:
        text += ELLIPSIS
    return RenderedBody(len(body), False, text, truncated)


def printable_json(text: str) -> str:
    """JSON text with the few non-printable characters json.dumps lets through escaped.

    ``json.dumps`` already escapes C0 controls inside strings; with ``ensure_ascii=False`` it
    lets through DEL, C1 controls and other non-printables, which we escape (and keep newlines
    and indentation).
    """
    return "".join(
        ch if ch.isprintable() or ch == "\n" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def failure_summary(dead_letter: DeadLetter) -> str:
    """``permanent``, ``exhausted``, ``broker: delivery_limit``..."""
    if dead_letter.dead_lettered_by == DEAD_LETTERED_BY_CONSUMER:
        summary = dead_letter.failure_kind or MISSING
        if dead_letter.failure_reason:
            summary += f" (broker: {dead_letter.failure_reason})"
        return summary
    if dead_letter.dead_lettered_by == DEAD_LETTERED_BY_BROKER:
        return f"broker: {dead_letter.failure_reason or 'unknown reason'}"
    return "unknown (no failure headers)"


def _text(value: object) -> str:
    if value is None:
        return MISSING
    return printable(str(value))


def describe(dead_letter: DeadLetter) -> list[tuple[str, str]]:
    """The label/value rows shown for one dead letter by ``show``."""
    error = dead_letter.error_type or ""
    if dead_letter.error_message:
        error = f"{error}: {dead_letter.error_message}" if error else dead_letter.error_message
    attempts = _text(dead_letter.attempts)
    if dead_letter.death_count is not None:
        attempts += f" (dead-lettered {dead_letter.death_count}x by the broker)"
    rows = [
        ("message_id", _text(dead_letter.message_id)),
        ("type", _text(dead_letter.event_type)),
        ("correlation_id", _text(dead_letter.correlation_id)),
        ("failure", printable(failure_summary(dead_letter))),
        ("error", _text(error or None)),
        ("service", _text(dead_letter.service)),
        ("attempts", attempts),
        ("first failure", _text(dead_letter.first_failure_at)),
        ("last failure", _text(dead_letter.last_failure_at)),
        ("original queue", _text(dead_letter.original_queue)),
        ("original exchange", _original_exchange(dead_letter.original_exchange)),
        ("original routing key", _text(dead_letter.original_routing_key)),
    ]
    if dead_letter.replay_count:
        rows.append(("replayed before", f"{dead_letter.replay_count}x"))
    return rows


def _original_exchange(exchange: str | None) -> str:
    if exchange is None:
        return MISSING
    return printable(exchange) if exchange else '"" (default exchange)'


def jsonable(value: Any, depth: int = 0) -> Any:
    """A header value converted to something ``json.dumps`` accepts."""
    if depth > 32:
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return repr(bytes(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def message_record(index: int, message: RawMessage) -> dict[str, Any]:
    """The ``show --json`` object for one message."""
    dead_letter = decode_dead_letter(message.headers, message.body, message.properties)
    body = render_body(message.body)
    record: dict[str, Any] = {"index": index}
    record.update(asdict(dead_letter))
    record["redelivered"] = message.redelivered
    record["properties"] = {
        k: jsonable(v) for k, v in message.properties.items() if k != "headers" and v is not None
    }
    record["headers"] = jsonable(dict(message.headers))
    record["body_is_json"] = body.is_json
    record["body"] = body.value if body.is_json else body.text
    record["body_truncated"] = False if body.is_json else body.truncated
    return record
