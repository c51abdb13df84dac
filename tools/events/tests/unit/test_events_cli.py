"""The command line: help, usage errors before any connection, URLs and their masking."""

from datetime import UTC, datetime

import pytest

from signup_events import cli
from signup_events.broker import copy_of
from signup_events.config import reader_url, service_url
from signup_shared.testing import FakeMessage


def test_help_and_replay_help_say_duplicates_are_absorbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--help"]) == 0
    assert cli.main(["replay", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tail" in out and "stats" in out
    assert "duplicates are absorbed by the service's inbox" in " ".join(out.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats", "--from", "soon"], "--from 'soon'"),
        (["stats", "--from", "9", "--to", "3"], "--to 3 lies before --from 9"),
        (["replay", "--service", "Bad Name", "--from", "first"], "--service 'Bad Name'"),
        (["replay", "--service", "audit", "--from", "first", "--to", "first"], "--to 'first'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_argparse_refuses_a_bad_count() -> None:
    assert cli.main(["tail", "-n", "0"]) == 2


def test_reader_and_service_urls() -> None:
    assert reader_url(None, {}) == "amqp://events-reader:local-dev-events-reader@127.0.0.1:5672//"
    assert reader_url("amqp://a", {"EVENTS_READER_AMQP_URL": "amqp://b"}) == "amqp://a"
    assert reader_url(None, {"EVENTS_READER_AMQP_URL": "amqp://b"}) == "amqp://b"
    env = {"AUDIT_AMQP_URL": "amqp://audit-url", "AMQP_URL": "amqp://any"}
    assert service_url("audit", None, env) == "amqp://audit-url"
    assert service_url("stats", None, env) == "amqp://any"
    assert service_url("stats", None, {}).startswith("amqp://stats:local-dev-stats@")


def test_copy_keeps_body_and_properties_drops_offset_and_user_id() -> None:
    original = FakeMessage(
        b'{"a": 1}',
        {"x-stream-offset": 5, "x-event-version": 2, "traceparent": "t"},
        {"message_id": "m", "type": "UserSignedUp", "user_id": "accounts", "delivery_mode": 2},
        {"routing_key": "accounts.user_signed_up.v2"},
    )
    copy = copy_of(original, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert copy.body == b'{"a": 1}'
    assert copy.properties["message_id"] == "m" and "user_id" not in copy.properties
    assert copy.properties["application_headers"] == {
        "x-event-version": 2,
        "traceparent": "t",
        "x-signup-replayed-at": "2026-01-02T03:04:05.000Z",
    }
