import pytest

from stats import __main__ as cli


@pytest.fixture(autouse=True)
def _not_our_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` would ask the kernel to end the test run itself with its parent (and watch it)."""
    monkeypatch.setattr("signup_shared.cli.lifecycle.die_with_parent", lambda: True)


def test_web_command_runs_the_web_program_as_its_own_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[tuple[str, str]] = []
    monkeypatch.setattr(
        cli.runpy, "run_module", lambda name, run_name, alter_sys: started.append((name, run_name))
    )
    monkeypatch.setattr("signup_shared.cli.configure_logging", lambda *_args: None)

    cli.main(["web"])

    assert started == [("stats.web", "__main__")]


def test_the_cli_offers_exactly_the_stats_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["relay"])

    assert "invalid choice: 'relay'" in capsys.readouterr().err
    assert cli.COMMANDS.keys() == {"consume", "migrate", "topology", "web"}
