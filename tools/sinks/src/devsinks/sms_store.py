"""Durable, idempotent append-only storage of accepted SMS messages."""

import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .sms_records import SmsRecord, parse_json_lines
from .sms_validation import SmsRequest

MESSAGES_FILE = "messages.jsonl"

log = logging.getLogger(__name__)


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def index_records(records: list[dict[str, object]]) -> dict[str, SmsRecord]:
    index: dict[str, SmsRecord] = {}
    for record in records:
        try:
            stored = SmsRecord(
                id=str(record["id"]),
                to=str(record["to"]),
                body=str(record["body"]),
                idempotency_key=str(record["idempotency_key"]),
                received_at=str(record["received_at"]),
            )
        except KeyError:
            continue
        index.setdefault(stored.idempotency_key, stored)
    return index


class SmsStore:
    """Appends one fsynced JSON line per new idempotency key to `<directory>/messages.jsonl`."""

    def __init__(
        self,
        directory: Path,
        *,
        id_factory: Callable[[], str] = new_message_id,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self.path = directory / MESSAGES_FILE
        self._id_factory = id_factory
        self._clock = clock
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = self.path.open("a+b")
        self._by_key = index_records(parse_json_lines(self._read_all()))
        self._terminate_torn_line()

    def _read_all(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    def _terminate_torn_line(self) -> None:
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        self._file.seek(size - 1)
        if self._file.read(1) != b"\n":
            log.warning("ignoring a torn last line in %s", self.path)
            self._append(b"\n")

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def accept(self, request: SmsRequest) -> tuple[SmsRecord, bool]:
        """Return the stored record and whether it was newly created by this call."""
        with self._lock:
            existing = self._by_key.get(request.idempotency_key)
            if existing is not None:
                return existing, False
            record = SmsRecord(
                id=self._id_factory(),
                to=request.to,
                body=request.body,
                idempotency_key=request.idempotency_key,
                received_at=self._clock(),
            )
            self._append(record.to_json_line())
            self._by_key[record.idempotency_key] = record
            return record, True

    def close(self) -> None:
        with self._lock:
            self._file.close()
