"""What the tool shows of a history event, the range it reads, and the counts of ``stats``.

Pure functions over broker messages (anything with ``properties``, ``headers`` and
``delivery_info``, as kombu delivers them): no I/O, unit-tested with fakes.
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from signup_contracts import registered_events
from signup_contracts.amqp import EVENT_VERSION_HEADER, key_version
from signup_contracts.sealed import SEALED
from signup_events.errors import UsageError
from signup_shared.messaging import history
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.wire import header_int

UNKNOWN = "?"


@dataclass(frozen=True)
class EventRecord:
    """One event of the history, as ``tail`` prints it and ``stats`` counts it."""

    offset: int | None
    id: str
    type: str
    version: int
    producer: str
    routing_key: str
    time: datetime | None

    @property
    def personal(self) -> str:
        """``sealed`` for a version whose personal fields travel encrypted (``UserSignedUp``
        v3: no key is needed, and none is used, to list it), ``clear`` for one that carries
        them in clear (the history keeps none), ``-`` for one without personal data."""
        event = registered_events().get((self.type, self.version))
        if event is None:
            return UNKNOWN
        if event.personal_data:
            return "clear"
        return SEALED if "personal" in event.model_fields else "-"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = iso(self.time) if self.time else None
        data["personal"] = self.personal
        return data


def record_of(message: Any) -> EventRecord:
    """The record of a delivery (never raises: what is missing shows as ``?``)."""
    delivery = Delivery.of(message)
    properties = delivery.properties
    version = header_int(delivery.headers.get(EVENT_VERSION_HEADER), 0, low=1, high=10_000)
    return EventRecord(
        offset=history.offset_of(message),
        id=str(properties.get("message_id") or UNKNOWN),
        type=str(properties.get("type") or UNKNOWN),
        version=version or key_version(delivery.routing_key),
        producer=str(properties.get("app_id") or UNKNOWN),
        routing_key=delivery.routing_key or UNKNOWN,
        time=moment_of(properties.get("timestamp")),
    )


def moment_of(stamp: object) -> datetime | None:
    """An AMQP timestamp (a datetime or seconds since the epoch) as an aware UTC datetime."""
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return datetime.fromtimestamp(stamp, UTC)
    return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_bound(text: str, option: str) -> history.Position:
    """``first`` | an offset | an ISO 8601 time, as the runtime's catch-up reads it; a usage
    error naming ``option`` otherwise."""
    try:
        return history.parse_position(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected 'first', a stream offset (an integer >= 0) or an "
            f"ISO 8601 time such as 2026-01-31T00:00:00Z"
        ) from None


def parse_end(text: str | None) -> int | datetime | None:
    """``--to``: an offset or a time (inclusive); ``first`` makes no sense as an end."""
    if text is None:
        return None
    end = parse_bound(text, "--to")
    if isinstance(end, str):
        raise UsageError("--to 'first': give an offset or an ISO 8601 time (or leave it out)")
    return end


def check_range(start: history.Position, end: int | datetime | None) -> None:
    """Refuse a range whose end lies before its start (when both are of one kind)."""
    if end is None or isinstance(start, str) or type(start) is not type(end):
        return
    if end < start:  # type: ignore[operator]  # same type, checked above
        raise UsageError(
            f"--to {history.describe(end)} lies before --from {history.describe(start)}"
        )


def past_end(record: EventRecord, end: int | datetime | None) -> bool:
    """True once a record lies after the inclusive end of the range."""
    if end is None:
        return False
    if isinstance(end, int):
        return record.offset is not None and record.offset > end
    return record.time is not None and record.time > end


HEADER = ("offset", "time", "type", "v", "personal", "producer", "routing key", "id")


def table(records: list[EventRecord]) -> list[str]:
    """Aligned text lines, one per record, under a header line."""
    rows = [HEADER] + [
        (
            "" if r.offset is None else str(r.offset),
            iso(r.time) if r.time else UNKNOWN,
            r.type,
            str(r.version),
            r.personal,
            r.producer,
            r.routing_key,
            r.id,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def json_lines(records: list[EventRecord]) -> list[str]:
    """One JSON object per record (JSON lines)."""
    return [json.dumps(record.as_json(), sort_keys=True) for record in records]


@dataclass
class Stats:
    """Counts of ``stats``: by type and version, by day (UTC), and the offsets seen."""

    total: int = 0
    by_type: Counter[tuple[str, int]] = field(default_factory=Counter)
    by_day: Counter[str] = field(default_factory=Counter)
    first_offset: int | None = None
    last_offset: int | None = None

    def add(self, record: EventRecord) -> None:
        self.total += 1
        self.by_type[(record.type, record.version)] += 1
        self.by_day[record.time.astimezone(UTC).date().isoformat() if record.time else UNKNOWN] += 1
        if record.offset is not None:
            if self.first_offset is None:
                self.first_offset = record.offset
            self.last_offset = record.offset

    def lines(self) -> list[str]:
        if not self.total:
            return ["no events in this range"]
        out = [f"{self.total} event(s), offsets {self.first_offset}..{self.last_offset}", ""]
        out.append("by type and version")
        width = max(len(t) for t, _ in self.by_type) + 4
        for (kind, version), count in sorted(self.by_type.items()):
            out.append(f"  {f'{kind} v{version}'.ljust(width)}{count:>10}")
        out += ["", "by day (UTC)"]
        for day, count in sorted(self.by_day.items()):
            out.append(f"  {day.ljust(width)}{count:>10}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "by_type": [
                {"type": kind, "version": version, "count": count}
                for (kind, version), count in sorted(self.by_type.items())
            ],
            "by_day": dict(sorted(self.by_day.items())),
        }
