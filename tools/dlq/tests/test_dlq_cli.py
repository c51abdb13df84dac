"""CLI tests that need no broker: argument handling, refusals and unreachable endpoints."""

from __future__ import annotations

import io
import os
from typing import Any

import pika.exceptions
import pytest

from signup_dlq import broker as broker_module
from signup_dlq.cli import build_parser, main
from signup_dlq.config import amqp_urls

CLOSED_AMQP = "amqp://guest:secret@127.0.0.1:1/%2F"
CLOSED_HTTP = "http://guest:secret@127.0.0.1:1"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("list", "show", "replay", "purge", "drop-erased"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "signup-dlq" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_bad_limit_is_a_usage_error(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "a.dlq", "--limit", limit]) == 2
    assert "--limit" in capsys.readouterr().err


def test_connection_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["--amqp-url", "amqp://a", "list"])
    assert args.amqp_url == "amqp://a"
    args = parser.parse_args(["list", "--amqp-url", "amqp://b", "--management-url", "http://m"])
    assert (args.amqp_url, args.management_url) == ("amqp://b", "http://m")
    args = parser.parse_args(["list"])
    assert args.amqp_url is None


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "notifications.user_signed_up", "--yes"],
        ["purge", "notifications.user_signed_up", "--yes"],
        ["show", "notifications.user_signed_up"],
        ["replay", "notifications.user_signed_up.retry.5000", "--yes"],
        ["drop-erased", "notifications.user_signed_up", "--yes"],
        ["drop-erased", "notifications.user_signed_up", "--dry-run"],
    ],
)
def test_refuses_queues_that_are_not_dlqs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--amqp-url", CLOSED_AMQP]) == 2
    err = capsys.readouterr().err
    assert "not a dead-letter queue" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["replay", "purge", "drop-erased"])
def test_refuses_without_yes_when_not_a_tty(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main([command, "x.user_signed_up.dlq", "--amqp-url", CLOSED_AMQP]) == 2
    err = capsys.readouterr().err
    assert "without --yes" in err
    assert err.count("\n") == 1


def test_drop_erased_without_an_api_key_is_a_usage_error_before_the_broker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", raising=False)
    monkeypatch.delenv("SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE", raising=False)
    monkeypatch.setattr(broker_module.pika, "BlockingConnection", _no_broker)
    assert main(["drop-erased", "x.dlq", "--yes", "--amqp-url", CLOSED_AMQP]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: set SIGNUP_DLQ_ACCOUNTS_API_KEY or")
    assert err.count("\n") == 1


def test_drop_erased_takes_no_api_key_argument(capsys: pytest.CaptureFixture[str]) -> None:
    # An argument would show in ps: the key comes from the environment only.
    assert main(["drop-erased", "x.dlq", "--api-key", "sk_x_0123456789abcdef_00"]) == 2
    assert "unrecognized arguments: --api-key" in capsys.readouterr().err


def test_drop_erased_options() -> None:
    args = build_parser().parse_args(
        ["drop-erased", "x.dlq", "--dry-run", "--accounts-url", "http://accounts:8000", "-y"]
    )
    assert (args.queue, args.dry_run, args.accounts_url, args.yes) == (
        "x.dlq",
        True,
        "http://accounts:8000",
        True,
    )


def _no_broker(parameters: Any) -> None:
    raise AssertionError("the broker must not be contacted")


@pytest.mark.integration  # tries a real (closed) port
@pytest.mark.parametrize(
    "argv",
    [
        ["show", "x.dlq"],
        ["replay", "x.dlq", "--yes"],
        ["purge", "x.dlq", "--yes"],
    ],
)
def test_unreachable_broker_is_one_line_exit_1(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--amqp-url", CLOSED_AMQP]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: cannot connect to the broker")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert "secret" not in captured.err


@pytest.mark.integration  # tries a real (closed) port
def test_unreachable_broker_via_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMQP_URL", CLOSED_AMQP)
    assert main(["show", "x.dlq"]) == 1
    assert "127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.integration  # tries a real (closed) port
def test_management_api_off_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--management-url", CLOSED_HTTP]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the management API")
    assert "rabbitmq-plugins enable rabbitmq_management" in err
    assert err.count("\n") == 1
    assert "secret" not in err


@pytest.mark.integration  # tries a real (closed) port
def test_management_url_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", CLOSED_HTTP)
    assert main(["list"]) == 1
    assert "127.0.0.1:1" in capsys.readouterr().err


def test_invalid_urls_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "x.dlq", "--amqp-url", "foo://x"]) == 1
    assert capsys.readouterr().err.startswith("error: invalid AMQP URL")
    assert main(["list", "--management-url", "file:///etc/passwd"]) == 1
    assert "http:// or https://" in capsys.readouterr().err


CLOSED_CLUSTER = (
    "amqp://signup-dlq:first-secret@127.0.0.1:1/%2F;amqp://signup-dlq:second-secret@127.0.0.2:1/%2F"
)


def test_a_cluster_url_is_tried_node_by_node_and_never_printed_with_a_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[Any] = []

    def refuse(parameters: Any) -> None:
        tried.extend(parameters)
        # Whatever a library puts in its message is masked too.
        raise pika.exceptions.AMQPConnectionError(f"no node of {CLOSED_CLUSTER} answered")

    monkeypatch.setattr(broker_module.pika, "BlockingConnection", refuse)
    monkeypatch.setenv("AMQP_URL", CLOSED_CLUSTER)
    assert main(["show", "x.dlq"]) == 1
    err = capsys.readouterr().err
    assert [(p.host, p.credentials.password) for p in tried] == [
        ("127.0.0.1", "first-secret"),
        ("127.0.0.2", "second-secret"),
    ]
    assert err.startswith("error: cannot connect to the broker at amqp://signup-dlq:***@127.0.0.1")
    assert "amqp://signup-dlq:***@127.0.0.2:1/%2F" in err
    assert "secret" not in err
    assert err.count("\n") == 1


def test_a_cluster_url_with_two_vhosts_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "amqp://u:first-secret@127.0.0.1:1/a;amqp://u:second-secret@127.0.0.1:1/b"
    assert main(["show", "x.dlq", "--amqp-url", url]) == 2
    err = capsys.readouterr().err
    assert "different vhosts" in err
    assert "secret" not in err


@pytest.mark.integration  # a closed port, then the local broker
def test_a_cluster_url_fails_over_to_the_node_that_answers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from_fixture = amqp_urls(os.environ["AMQP_URL"])[0]
    monkeypatch.setenv("AMQP_URL", f"{CLOSED_AMQP};{from_fixture}")
    assert main(["show", "absent-node-failover.dlq"]) == 1
    err = capsys.readouterr().err
    assert err == "error: queue 'absent-node-failover.dlq' does not exist in vhost '/'\n"
