"""The accounts-web entry point: --help answers without starting; settings reach the server."""

from typing import Any

import pytest

from accounts import web
from signup_shared import cli, webserver


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str, int]]:
    """No parent-death signal for the test runner, no logging or tracing set up, no server:
    what would have been served is recorded."""
    calls: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(cli.lifecycle, "die_with_parent", lambda: None)
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)
    monkeypatch.setattr(cli.tracing, "configure_tracing", lambda *_args: None)
    monkeypatch.setattr(cli.tracing, "shutdown", lambda: None)
    monkeypatch.setattr(web, "app", lambda settings: ("app of", settings.service_name))
    monkeypatch.setattr(
        web.webserver, "serve", lambda app, host, port, _prog: calls.append((app, host, port))
    )
    return calls


def test_help_describes_the_process_and_its_settings_and_starts_nothing(
    served: list[tuple[Any, str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        web.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: accounts-web")
    for line in ["ACCOUNTS_HTTP_HOST [127.0.0.1]", "ACCOUNTS_WEB_PORT [8000]", "LOG_LEVEL [INFO]"]:
        assert f"  {line}\n" in out
    assert "  ACCOUNTS_DATABASE_URL\n" in out  # named, but its default (a password) not shown
    assert "local-dev" not in out
    assert served == []


def test_an_unknown_argument_is_refused_before_anything_starts(
    served: list[tuple[Any, str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        web.main(["--bogus"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert served == []


def test_the_server_listens_where_the_settings_say(
    served: list[tuple[Any, str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTS_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("ACCOUNTS_WEB_PORT", "8123")
    web.main([])
    assert served == [(("app of", "accounts"), "0.0.0.0", 8123)]


def test_the_command_line_overrides_the_settings(served: list[tuple[Any, str, int]]) -> None:
    web.main(["--host", "127.0.0.2", "--port", "8124"])
    assert served == [(("app of", "accounts"), "127.0.0.2", 8124)]


def test_accounts_web_runs_on_uvloop_and_httptools() -> None:
    """Its dependencies: the cheaper event loop and HTTP parser (see signup_shared.webserver)."""
    assert webserver.implementations() == ("uvloop", "httptools")
