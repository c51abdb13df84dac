"""Fault injection for the SMS sink, configured through `/_control/faults`."""

import threading
from dataclasses import dataclass, field
from typing import TypeGuard

from .phone import is_e164
from .sms_validation import ValidationError

MIN_FAULT_STATUS = 400
MAX_FAULT_STATUS = 599


@dataclass(frozen=True, slots=True)
class StatusFault:
    status: int
    count: int | None


@dataclass(frozen=True, slots=True)
class FaultSpec:
    status_fault: StatusFault | None = None
    fail_recipients: dict[str, int] = field(default_factory=dict)


def _is_fault_status(value: object) -> TypeGuard[int]:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and MIN_FAULT_STATUS <= value <= MAX_FAULT_STATUS
    )


def _status_error(name: str) -> ValidationError:
    return ValidationError(
        name, f"'{name}' must be an HTTP status between {MIN_FAULT_STATUS} and {MAX_FAULT_STATUS}"
    )


def _parse_status_fault(payload: dict[str, object]) -> StatusFault | ValidationError | None:
    if "status" not in payload:
        if "count" in payload:
            return ValidationError("status", "'status' is required when 'count' is given")
        return None
    status = payload["status"]
    if not _is_fault_status(status):
        return _status_error("status")
    count = payload.get("count")
    if count is None:
        return StatusFault(status, None)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return ValidationError("count", "'count' must be a positive integer or null")
    return StatusFault(status, count)


def _parse_fail_recipients(payload: dict[str, object]) -> dict[str, int] | ValidationError:
    recipients = payload.get("fail_recipients", {})
    if not isinstance(recipients, dict):
        return ValidationError("fail_recipients", "'fail_recipients' must be an object")
    parsed: dict[str, int] = {}
    for number, status in recipients.items():
        if not is_e164(number):
            return ValidationError("fail_recipients", f"{number!r} is not an E.164 phone number")
        if not _is_fault_status(status):
            return _status_error("fail_recipients")
        parsed[number] = status
    return parsed


def parse_fault_spec(payload: dict[str, object]) -> FaultSpec | ValidationError:
    status_fault = _parse_status_fault(payload)
    if isinstance(status_fault, ValidationError):
        return status_fault
    recipients = _parse_fail_recipients(payload)
    if isinstance(recipients, ValidationError):
        return recipients
    if status_fault is None and not recipients:
        return ValidationError(None, "expected 'status' (optional 'count') or 'fail_recipients'")
    return FaultSpec(status_fault=status_fault, fail_recipients=recipients)


class FaultInjector:
    """Thread-safe fault state; a status fault replaces the previous one, recipients accumulate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status_fault: StatusFault | None = None
        self._fail_recipients: dict[str, int] = {}

    def apply(self, spec: FaultSpec) -> None:
        with self._lock:
            if spec.status_fault is not None:
                self._status_fault = spec.status_fault
            self._fail_recipients.update(spec.fail_recipients)

    def clear(self) -> None:
        with self._lock:
            self._status_fault = None
            self._fail_recipients = {}

    def take_status(self) -> int | None:
        """Consume one occurrence of the pending status fault, if any."""
        with self._lock:
            fault = self._status_fault
            if fault is None:
                return None
            if fault.count is not None:
                remaining = fault.count - 1
                self._status_fault = StatusFault(fault.status, remaining) if remaining else None
            return fault.status

    def recipient_status(self, number: str) -> int | None:
        with self._lock:
            return self._fail_recipients.get(number)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            fault = self._status_fault
            return {
                "status": None if fault is None else fault.status,
                "count": None if fault is None else fault.count,
                "fail_recipients": dict(self._fail_recipients),
            }
