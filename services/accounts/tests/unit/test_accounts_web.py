"""The accounts-web entry point: --help answers without starting; settings reach the server."""

from typing import Any, ClassVar

import pytest
import uvicorn

from accounts import web


class RecordingServer:
    """Stands in for the HTTP server: keeps the configuration it would have served."""

    configs: ClassVar[list[uvicorn.Config]] = []

    def __init__(self, config: uvicorn.Config) -> None:
        self.configs.append(config)

    def run(self) -> None:
        return None


@pytest.fixture
def quiet_process(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """No parent-death signal for the test runner, no logging or tracing set up, no server."""
    RecordingServer.configs = []
    monkeypatch.setattr(web.lifecycle, "die_with_parent", lambda: None)
    monkeypatch.setattr(web, "configure_logging", lambda *_args: None)
    monkeypatch.setattr(web.tracing, "configure_tracing", lambda *_args: None)
    monkeypatch.setattr(web.tracing, "shutdown", lambda: None)
    monkeypatch.setattr(web, "AnnouncingServer", RecordingServer)
    monkeypatch.setattr(web, "app", lambda settings: ("app of", settings.service_name))
    return RecordingServer.configs


def test_help_describes_the_process_and_its_settings_and_starts_nothing(
    quiet_process: list[uvicorn.Config], capsys: pytest.CaptureFixture[str]
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
    assert quiet_process == []


def test_an_unknown_argument_is_refused_before_anything_starts(
    quiet_process: list[uvicorn.Config], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        web.main(["--port", "9"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --port 9" in capsys.readouterr().err
    assert quiet_process == []


def test_the_server_listens_where_the_settings_say(
    quiet_process: list[uvicorn.Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTS_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("ACCOUNTS_WEB_PORT", "8123")
    web.main([])
    [config] = quiet_process
    app: Any = config.app
    assert (config.host, config.port, app) == ("0.0.0.0", 8123, ("app of", "accounts"))
