"""The JSON-lines record format of stored SMS messages."""

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class SmsRecord:
    id: str
    to: str
    body: str
    idempotency_key: str
    received_at: str

    def to_json_line(self) -> bytes:
        return json.dumps(asdict(self)).encode("ascii") + b"\n"


def parse_json_line(line: bytes) -> dict[str, object] | None:
    try:
        decoded = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def parse_json_lines(data: bytes) -> list[dict[str, object]]:
    """Parse complete lines only; a torn trailing line without a newline is ignored."""
    complete, _, _ = data.rpartition(b"\n")
    parsed = (parse_json_line(line) for line in complete.split(b"\n") if line.strip())
    return [record for record in parsed if record is not None]
