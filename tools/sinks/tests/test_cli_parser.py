"""The command line and signal handling of the sinks, without starting a server."""

import os
import signal
from pathlib import Path

import pytest

from devsinks.cli import build_parser
from devsinks.signals import StopSignals


def test_defaults() -> None:
    smtp = build_parser().parse_args(["smtp"])
    assert (smtp.host, smtp.port, smtp.maildir) == ("127.0.0.1", 1025, Path("var/mail"))
    sms = build_parser().parse_args(["sms"])
    assert (sms.host, sms.port, sms.directory, sms.token) == (
        "127.0.0.1",
        8025,
        Path("var/sms"),
        None,
    )


def test_verbose_flag_follows_the_command() -> None:
    assert build_parser().parse_args(["smtp", "-v"]).verbose
    assert not build_parser().parse_args(["sms"]).verbose


def test_stop_signals_are_recorded_and_handlers_restored() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait() == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == previous


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
