"""Commands against servers that are not there: one line naming the address, no traceback.

Port 1 on the loopback address has nothing listening, so each connection is refused at once,
as with a stopped PostgreSQL or RabbitMQ.
"""

from pathlib import Path

import pytest
from pydantic_settings import SettingsConfigDict

from signup_shared import cli
from signup_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


class Stopped(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STOPPED_", extra="ignore")

    database_url: str = "postgresql+psycopg://stopped:pw-db-1@127.0.0.1:1/stopped"
    amqp_url: str = "amqp://stopped:pw-mq-1@127.0.0.1:1//"


COMMANDS = {
    "migrate": lambda settings: cli.migrate(settings.database_url, Path("no-migrations")),
    "topology": lambda settings: cli.declare_topology(settings.amqp_url, []),
}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("migrate", "PostgreSQL at postgresql+psycopg://stopped:***@127.0.0.1:1/stopped failed"),
        ("topology", "RabbitMQ at amqp://stopped:***@127.0.0.1:1// failed"),
    ],
)
def test_a_stopped_server_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    expected: str,
) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    monkeypatch.setattr(cli.lifecycle, "die_with_parent", lambda: True)
    with pytest.raises(SystemExit) as exited:
        cli.run("stopped", None, Stopped, COMMANDS, [command])
    assert exited.value.code == cli.EXIT_UNAVAILABLE
    [line] = capsys.readouterr().err.splitlines()
    assert expected in line
    assert "refused" in line.lower()
    assert "pw-db-1" not in line and "pw-mq-1" not in line
