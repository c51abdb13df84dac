import json

from devsinks.sms_records import SmsRecord, parse_json_lines


def test_record_is_one_json_line() -> None:
    record = SmsRecord("msg_1", "+15551234567", "line1\nline2 \u2028 ü", "k", "2024-01-01T00:00:00")
    line = record.to_json_line()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "id": "msg_1",
        "to": "+15551234567",
        "body": "line1\nline2 \u2028 ü",
        "idempotency_key": "k",
        "received_at": "2024-01-01T00:00:00",
    }


def test_lone_surrogates_survive_a_round_trip() -> None:
    record = SmsRecord("msg_1", "+15551234567", "\ud800", "k", "t")
    assert parse_json_lines(record.to_json_line())[0]["body"] == "\ud800"


def test_parse_skips_torn_tail_and_malformed_lines() -> None:
    data = b'{"id": "a"}\n\nnot json\n[1]\n{"id": "b"}\n{"id": "c'
    assert parse_json_lines(data) == [{"id": "a"}, {"id": "b"}]


def test_parse_empty() -> None:
    assert parse_json_lines(b"") == []
