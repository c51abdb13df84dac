"""The shared command line: subcommands and --help, migration commands, one-line failures."""

from pathlib import Path
from typing import Any

import amqp.exceptions
import kombu.exceptions
import psycopg
import pytest
import sqlalchemy.exc
from pydantic_settings import SettingsConfigDict

from signup_shared import cli
from signup_shared.settings import ServiceSettings

DATABASE_URL = "postgresql+psycopg://demo:s3cret-pw@127.0.0.1:1/demo"
AMQP_URL = "amqp://demo:s3cret-pw@127.0.0.1:1//;amqp://demo:other-pw@10.0.0.2:5672//"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")

    database_url: str = DATABASE_URL
    amqp_url: str = AMQP_URL
    web_port: int = 8123


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    monkeypatch.setattr(cli.lifecycle, "die_with_parent", lambda: True)


def run(commands: dict[str, Any], *argv: str) -> None:
    cli.run("demo", "The demo service.", DemoSettings, commands, list(argv))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (DATABASE_URL, "postgresql+psycopg://demo:***@127.0.0.1:1/demo"),
        (AMQP_URL, "amqp://demo:***@127.0.0.1:1//;amqp://demo:***@10.0.0.2:5672//"),
        ("amqp://guest@host//", "amqp://guest@host//"),
        ("amqp://host:5672//", "amqp://host:5672//"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_masked_url_hides_every_password(url: str, masked: str) -> None:
    assert cli.masked_url(url) == masked


def test_help_lists_the_commands_and_each_command_answers_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def consume(settings: DemoSettings) -> None:
        """Consume the demo queue."""

    commands = {"consume": consume, "migrate": lambda settings: None}
    with pytest.raises(SystemExit) as exited:
        run(commands, "--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name in ("consume", "migrate", "downgrade", "revision", "Consume the demo queue."):
        assert name in out
    with pytest.raises(SystemExit):
        run(commands, "migrate", "--help")
    assert "--sql" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run({"consume": lambda settings: None}, "relay")
    assert exited.value.code == 2
    assert "invalid choice: 'relay'" in capsys.readouterr().err


def _refused() -> BaseException:
    original = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 1 failed: '
        "Connection refused\n\tIs the server running on that host?"
    )
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, original)


@pytest.mark.parametrize(
    ("error", "names"),
    [
        (_refused(), ["PostgreSQL at postgresql+psycopg://demo:***@127.0.0.1:1/demo", "refused"]),
        (psycopg.OperationalError("timeout expired"), ["PostgreSQL", "DEMO_DATABASE_URL"]),
        (ConnectionRefusedError(111, "Connection refused"), ["RabbitMQ at amqp://demo:***@"]),
        (kombu.exceptions.OperationalError("[Errno 111] refused"), ["DEMO_AMQP_URL"]),
        (amqp.exceptions.AccessRefused("ACCESS_REFUSED"), ["RabbitMQ", "ACCESS_REFUSED"]),
    ],
)
def test_an_unreachable_server_is_one_line_with_the_masked_address(
    capsys: pytest.CaptureFixture[str], error: BaseException, names: list[str]
) -> None:
    def fail(settings: DemoSettings) -> None:
        raise error

    with pytest.raises(SystemExit) as exited:
        run({"topology": fail}, "topology")
    assert exited.value.code == cli.EXIT_UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("demo topology: ")
    assert "s3cret-pw" not in line and "other-pw" not in line
    assert "make servers" in line
    for name in names:
        assert name in line


def test_other_errors_keep_their_traceback() -> None:
    def fail(settings: DemoSettings) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run({"consume": fail}, "consume")


def test_invalid_settings_are_one_line_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMO_WEB_PORT", "eighty")
    with pytest.raises(SystemExit) as exited:
        run({"consume": lambda settings: None}, "consume")
    assert exited.value.code == cli.EXIT_USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("demo: invalid setting web_port:")


@pytest.fixture
def migration_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    fake = cli.migrations
    monkeypatch.setattr(fake, "ensure_database", lambda url: calls.append(("ensure",)) or False)
    monkeypatch.setattr(
        fake, "upgrade", lambda url, d, rev="head", sql=False: calls.append(("up", rev, sql))
    )
    monkeypatch.setattr(
        fake, "downgrade", lambda url, d, rev, sql=False: calls.append(("down", rev, sql))
    )
    monkeypatch.setattr(
        fake,
        "revision",
        lambda url, d, message, autogenerate=False: (
            calls.append(("rev", message, autogenerate)) or Path("versions/0004_x.py")
        ),
    )
    return calls


MIGRATE = {"migrate": lambda settings: cli.migrate(settings.database_url, Path("migrations"))}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["migrate"], [("ensure",), ("up", "head", False)]),
        (["migrate", "--to", "0002"], [("ensure",), ("up", "0002", False)]),
        (["migrate", "--sql"], [("up", "head", True)]),
        (["downgrade", "-1"], [("down", "-1", False)]),
        (["downgrade", "base", "--sql"], [("down", "base", True)]),
        (["revision", "-m", "add x"], [("rev", "add x", False)]),
        (["revision", "-m", "y", "--autogenerate"], [("rev", "y", True)]),
    ],
)
def test_the_migration_commands_reach_the_service_migrate_function(
    migration_calls: list[tuple[Any, ...]], argv: list[str], expected: list[tuple[Any, ...]]
) -> None:
    run(MIGRATE, *argv)
    assert migration_calls == expected


def test_serve_web_answers_help_without_serving(capsys: pytest.CaptureFixture[str]) -> None:
    served: list[Any] = []
    with pytest.raises(SystemExit) as exited:
        cli.serve_web("demo-web", "The demo API.", DemoSettings, served.append, ["--help"])
    assert exited.value.code == 0
    assert "--port" in capsys.readouterr().out
    assert served == []


def test_serve_web_serves_on_the_settings_or_the_given_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.tracing, "configure_tracing", lambda name: None)
    served: list[tuple[str, int]] = []

    def serve(settings: DemoSettings, host: str, port: int) -> None:
        served.append((host, port))

    cli.serve_web("demo-web", None, DemoSettings, serve, [])
    cli.serve_web("demo-web", None, DemoSettings, serve, ["--host", "0.0.0.0", "--port", "9"])
    assert served == [("127.0.0.1", 8123), ("0.0.0.0", 9)]


def test_serve_web_reports_an_unreachable_database_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.tracing, "configure_tracing", lambda name: None)

    def serve(settings: DemoSettings, host: str, port: int) -> None:
        raise _refused()

    with pytest.raises(SystemExit) as exited:
        cli.serve_web("demo-web", None, DemoSettings, serve, [])
    assert exited.value.code == cli.EXIT_UNAVAILABLE
    assert len(capsys.readouterr().err.splitlines()) == 1
