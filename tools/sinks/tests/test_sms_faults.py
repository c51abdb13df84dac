import pytest

from devsinks.sms_faults import FaultInjector, FaultSpec, StatusFault, parse_fault_spec
from devsinks.sms_validation import ValidationError


def test_parse_status_with_count() -> None:
    assert parse_fault_spec({"status": 500, "count": 2}) == FaultSpec(StatusFault(500, 2))


@pytest.mark.parametrize("payload", [{"status": 503}, {"status": 503, "count": None}])
def test_parse_status_without_count_means_until_cleared(payload: dict[str, object]) -> None:
    assert parse_fault_spec(payload) == FaultSpec(StatusFault(503, None))


def test_parse_fail_recipients() -> None:
    spec = parse_fault_spec({"fail_recipients": {"+15550001": 400}})
    assert spec == FaultSpec(fail_recipients={"+15550001": 400})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, None),
        ({"status": 200}, "status"),
        ({"status": True}, "status"),
        ({"status": "500"}, "status"),
        ({"count": 2}, "status"),
        ({"status": 500, "count": 0}, "count"),
        ({"status": 500, "count": True}, "count"),
        ({"status": 500, "count": 1.5}, "count"),
        ({"fail_recipients": ["+15550001"]}, "fail_recipients"),
        ({"fail_recipients": {"15550001": 400}}, "fail_recipients"),
        ({"fail_recipients": {"+15550001": 99}}, "fail_recipients"),
    ],
)
def test_parse_rejects_invalid_specs(payload: dict[str, object], field: str | None) -> None:
    result = parse_fault_spec(payload)
    assert isinstance(result, ValidationError)
    assert result.field == field


def test_counted_status_fault_is_consumed() -> None:
    faults = FaultInjector()
    faults.apply(FaultSpec(StatusFault(500, 2)))
    assert [faults.take_status() for _ in range(3)] == [500, 500, None]


def test_uncounted_status_fault_lasts_until_cleared() -> None:
    faults = FaultInjector()
    faults.apply(FaultSpec(StatusFault(503, None)))
    assert [faults.take_status() for _ in range(5)] == [503] * 5
    faults.clear()
    assert faults.take_status() is None


def test_new_status_fault_replaces_old_and_recipients_accumulate() -> None:
    faults = FaultInjector()
    faults.apply(FaultSpec(StatusFault(500, 5), {"+15550001": 400}))
    faults.apply(FaultSpec(StatusFault(429, 1), {"+15550002": 503}))
    assert faults.snapshot() == {
        "status": 429,
        "count": 1,
        "fail_recipients": {"+15550001": 400, "+15550002": 503},
    }
    assert faults.recipient_status("+15550001") == 400
    assert faults.recipient_status("+15550003") is None
    faults.clear()
    assert faults.snapshot() == {"status": None, "count": None, "fail_recipients": {}}
