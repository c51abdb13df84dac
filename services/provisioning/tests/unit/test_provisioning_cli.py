import pytest

from provisioning import __main__ as cli


@pytest.fixture(autouse=True)
def _not_our_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` would ask the kernel to end the test run itself with its parent (and watch it)."""
    monkeypatch.setattr("signup_shared.cli.lifecycle.die_with_parent", lambda: True)


def test_offers_the_service_commands():
    assert sorted(cli.COMMANDS) == ["consume", "migrate", "relay", "topology"]


def test_runs_the_chosen_command_with_settings(monkeypatch):
    ran = []
    monkeypatch.setattr("signup_shared.cli.configure_logging", lambda *_args: None)
    monkeypatch.setitem(cli.COMMANDS, "topology", lambda settings: ran.append(settings))

    cli.main(["topology"])

    [settings] = ran
    assert settings.service_name == "provisioning"


def test_rejects_an_unknown_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["web"])

    assert "invalid choice" in capsys.readouterr().err
