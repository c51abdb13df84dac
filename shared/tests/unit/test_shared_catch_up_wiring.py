"""How a consuming process is told to catch up: the command line and the worker's retries."""

import threading
from typing import Any

import pytest
from pydantic_settings import SettingsConfigDict

from signup_shared import cli, worker
from signup_shared.messaging import history
from signup_shared.messaging.catch_up import CatchUpReport
from signup_shared.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    monkeypatch.setattr(cli.lifecycle, "die_with_parent", lambda: True)
    monkeypatch.delenv("DEMO_CATCH_UP_FROM", raising=False)


def run(*argv: str) -> list[ServiceSettings]:
    seen: list[ServiceSettings] = []
    cli.run("demo", None, DemoSettings, {"consume": seen.append}, list(argv))
    return seen


def test_catch_up_and_consume_options_set_the_start() -> None:
    [catch_up] = run("catch-up", "--from", "first")
    [consume] = run("consume", "--catch-up-from", "42")
    [plain] = run("consume")

    assert (catch_up.catch_up_from, catch_up.catch_up_then_exit) == ("first", True)
    assert (consume.catch_up_from, consume.catch_up_then_exit) == ("42", False)
    assert plain.catch_up_from is None


def test_a_bad_start_is_one_line_and_a_usage_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run("catch-up", "--from", "last-week")

    assert exit_.value.code == cli.EXIT_USAGE
    assert "demo: catch-up start 'last-week': expected 'first'" in capsys.readouterr().err


def test_a_missing_history_is_one_line_and_an_unavailable_exit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def consume(_settings: Any) -> None:
        raise history.HistoryError("the stream 'events.history' cannot be read")

    with pytest.raises(SystemExit) as exit_:
        cli.run("demo", None, DemoSettings, {"consume": consume}, ["catch-up", "--from", "first"])

    assert exit_.value.code == cli.EXIT_UNAVAILABLE
    assert "events.history" in capsys.readouterr().err


class FlakyJob:
    """A catch-up that fails ``failures`` times, then completes."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.runs = 0

    def __call__(self, *args: Any, **kwargs: Any) -> "FlakyJob":
        return self

    def run(self, stop: threading.Event) -> CatchUpReport:
        self.runs += 1
        if self.failures:
            raise self.failures.pop(0)
        return CatchUpReport(start="first", complete=True, handled=3)


def consumer(settings: ServiceSettings) -> Any:
    runtime = type("Runtime", (), {"subscriptions": [], "publisher": None, "processor": None})()
    return type("Worker", (), {"service": "demo", "settings": settings})(), runtime


def test_the_worker_catches_up_again_after_a_broker_failure(monkeypatch) -> None:
    job = FlakyJob([ConnectionError("broker gone"), OSError("reset")])
    monkeypatch.setattr(worker, "CatchUp", job)
    monkeypatch.setattr(worker.Backoff, "next", lambda self: 0.0)
    demo, runtime = consumer(DemoSettings(catch_up_from="first"))

    report = worker.catch_up(demo, runtime, threading.Event())

    assert job.runs == 3 and report is not None and report.handled == 3


def test_a_missing_history_is_not_retried(monkeypatch) -> None:
    job = FlakyJob([history.HistoryError("no stream")])
    monkeypatch.setattr(worker, "CatchUp", job)
    demo, runtime = consumer(DemoSettings(catch_up_from="first"))

    with pytest.raises(history.HistoryError):
        worker.catch_up(demo, runtime, threading.Event())
    assert job.runs == 1


def test_a_stopped_process_stops_catching_up(monkeypatch) -> None:
    job = FlakyJob([ConnectionError("broker gone")])
    monkeypatch.setattr(worker, "CatchUp", job)
    stop = threading.Event()
    stop.set()
    demo, runtime = consumer(DemoSettings(catch_up_from="first"))

    assert worker.catch_up(demo, runtime, stop) is None and job.runs == 0
