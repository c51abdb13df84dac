"""Command line: `python -m devsinks smtp|sms [options]`, each running in the foreground."""

import argparse
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from . import sms_http, smtp_sink
from .signals import StopSignals

log = logging.getLogger("devsinks")


class _DropLoginDataDeprecation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


class Sink(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


SMTP_HELP = "SMTP server storing every message it receives in a Maildir"
SMS_HELP = "HTTP SMS gateway storing every message it accepts as a JSON line"


def build_parser() -> argparse.ArgumentParser:
    """``python -m devsinks smtp|sms [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m devsinks",
        description="Loopback SMTP and SMS gateway sinks for the local developer stack",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _smtp_options(commands.add_parser("smtp", help=SMTP_HELP, **_sub_options(SMTP_HELP)))
    _sms_options(commands.add_parser("sms", help=SMS_HELP, **_sub_options(SMS_HELP)))
    return parser


def script_parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of the ``devsinks-smtp`` / ``devsinks-sms`` scripts (one sink each)."""
    description = SMTP_HELP if command == "smtp" else SMS_HELP
    parser = argparse.ArgumentParser(prog=prog, **_sub_options(description))
    (_smtp_options if command == "smtp" else _sms_options)(parser)
    parser.set_defaults(command=command)
    return parser


def _sub_options(description: str) -> dict[str, Any]:
    return {"description": description, "formatter_class": argparse.ArgumentDefaultsHelpFormatter}


def _verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log protocol details, unmasked"
    )


def _smtp_options(parser: argparse.ArgumentParser) -> None:
    _verbose_option(parser)
    parser.add_argument("--host", default=smtp_sink.DEFAULT_HOST, help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=smtp_sink.DEFAULT_PORT, help="port to listen on"
    )
    parser.add_argument(
        "--maildir", type=Path, default=smtp_sink.DEFAULT_MAILDIR, help="Maildir to store into"
    )


def _sms_options(parser: argparse.ArgumentParser) -> None:
    _verbose_option(parser)
    parser.add_argument("--host", default=sms_http.DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=sms_http.DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--dir",
        type=Path,
        default=sms_http.DEFAULT_DIR,
        dest="directory",
        help="directory of the JSON-lines store",
    )
    parser.add_argument("--token", default=None, help="require this bearer token")


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    aiosmtpd_log = logging.getLogger("mail.log")
    # aiosmtpd logs unmasked envelope addresses at INFO, and this warning on every AUTH.
    aiosmtpd_log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    aiosmtpd_log.addFilter(_DropLoginDataDeprecation())


def build_sink(args: argparse.Namespace) -> Sink:
    if args.command == "smtp":
        return smtp_sink.SmtpSink(maildir=args.maildir, host=args.host, port=args.port)
    return sms_http.SmsSink(
        directory=args.directory, host=args.host, port=args.port, token=args.token
    )


def run(sink: Sink) -> int:
    with StopSignals() as stop:
        try:
            sink.start()
        except OSError as error:
            log.error("could not start: %s", error)
            return 1
        try:
            signum = stop.wait()
            log.info("received %s, shutting down", signum.name)
        finally:
            sink.stop()
    return 0


def die_with_parent() -> None:
    """SIGTERM when our parent (supervisord, the test harness) dies, so no sink outlives it.

    The same as ``signup_shared.lifecycle.die_with_parent``, kept here so the sinks stay a
    standalone package: Linux only, and exit at once if ``SIGNUP_PARENT_PID`` names a parent
    that is already gone (it died before the prctl call).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(1, int(signal.SIGTERM)) != 0:  # 1 = PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    expected = os.environ.pop("SIGNUP_PARENT_PID", "")
    if expected.isdigit() and os.getppid() != int(expected):
        raise SystemExit(f"parent process {expected} is gone: not starting")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devsinks smtp|sms [options]``."""
    return serve(build_parser().parse_args(argv))


def serve(args: argparse.Namespace) -> int:
    die_with_parent()  # before serving: the sink must not outlive the platform's supervisor
    configure_logging(args.verbose)
    return run(build_sink(args))


def smtp_main() -> int:
    return serve(script_parser("smtp", _script_name()).parse_args(sys.argv[1:]))


def sms_main() -> int:
    return serve(script_parser("sms", _script_name()).parse_args(sys.argv[1:]))


def _script_name() -> str:
    return Path(sys.argv[0]).name
