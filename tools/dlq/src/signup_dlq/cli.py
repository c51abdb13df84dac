"""``signup-dlq``: list, show, replay and purge the dead-letter queues of the Signup Platform,
and drop the dead letters of erased users."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from signup_dlq import __version__
from signup_dlq.commands import Context, cmd_list, cmd_purge, cmd_replay, cmd_show
from signup_dlq.config import (
    ACCOUNTS_API_KEY_ENV,
    ACCOUNTS_API_KEY_FILE_ENV,
    ACCOUNTS_URL_ENV,
    AMQP_URL_ENV,
    DEFAULT_ACCOUNTS_URL,
    MANAGEMENT_URL_ENV,
    mask_credentials,
    resolve_amqp_url,
    resolve_management_url,
)
from signup_dlq.erased_command import cmd_drop_erased
from signup_dlq.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    DlqError,
    UsageError,
)
from signup_dlq.janitor_command import cmd_drop_erased_all
from signup_dlq.render import printable

SHOW_DEFAULT_LIMIT = 10
NON_TTY_WIDTH = 200


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--amqp-url",
        default=default,
        metavar="URL",
        help=(
            f"AMQP URL (default: $SIGNUP_DLQ_AMQP_URL, ${AMQP_URL_ENV} or the local operator "
            "user amqp://signup-dlq:...@127.0.0.1:5672/%%2F)"
        ),
    )
    parser.add_argument(
        "--management-url",
        default=default,
        metavar="URL",
        help=(
            f"management API URL (default: $SIGNUP_DLQ_MANAGEMENT_URL, ${MANAGEMENT_URL_ENV} or "
            "the local operator user http://signup-dlq:...@127.0.0.1:15672)"
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signup-dlq",
        description=(
            "Inspect, replay and purge the dead-letter queues (<queue>.dlq); drop the dead "
            "letters of erased users."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_options(parser, None)
    # The same options after the sub-command; SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    list_cmd = commands.add_parser(
        "list", parents=[common], help="list the dead-letter queues with their depth"
    )
    list_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    list_cmd.set_defaults(handler=cmd_list)

    show = commands.add_parser(
        "show", parents=[common], help="show the first messages of a DLQ (left in place)"
    )
    show.add_argument("queue", metavar="QUEUE", help="dead-letter queue (<queue>.dlq)")
    show.add_argument(
        "--limit",
        type=_positive_int,
        default=SHOW_DEFAULT_LIMIT,
        metavar="N",
        help=f"how many messages (default: {SHOW_DEFAULT_LIMIT})",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(handler=cmd_show)

    replay = commands.add_parser(
        "replay", parents=[common], help="move messages back to their original queue"
    )
    replay.add_argument("queue", metavar="QUEUE", help="dead-letter queue (<queue>.dlq)")
    replay.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="replay at most N"
    )
    replay.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    replay.set_defaults(handler=cmd_replay)

    purge = commands.add_parser("purge", parents=[common], help="delete all messages of a DLQ")
    purge.add_argument("queue", metavar="QUEUE", help="dead-letter queue (<queue>.dlq)")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=cmd_purge)

    drop = commands.add_parser(
        "drop-erased",
        parents=[common],
        help="drop the dead letters of erased users (asks accounts), keep the others",
        description=(
            "Walks the DLQ (or, with --all, every DLQ holding messages) once: a dead letter "
            "with personal data in clear (UserSignedUp v1/v2) of a user accounts answers 410 "
            "Gone for is dropped; every other message is put back unchanged. --every repeats "
            "the pass until SIGTERM. The API key (scope users:read) comes from "
            f"${ACCOUNTS_API_KEY_ENV} or the file named by ${ACCOUNTS_API_KEY_FILE_ENV}, never "
            "from an argument."
        ),
    )
    drop.add_argument(
        "queue", metavar="QUEUE", nargs="?", default=None, help="dead-letter queue (<queue>.dlq)"
    )
    drop.add_argument(
        "--all",
        action="store_true",
        help=(
            "every dead-letter queue of the vhost holding messages (the management API lists "
            "them, a passive declare skips the empty ones); needs --yes or --dry-run"
        ),
    )
    drop.add_argument(
        "--every",
        type=_positive_int,
        default=None,
        metavar="SECONDS",
        help="with --all: a pass now and then every SECONDS until SIGTERM/Ctrl-C (exit 0)",
    )
    drop.add_argument(
        "--metrics-port",
        type=_positive_int,
        default=None,
        metavar="PORT",
        help=(
            "with --every: serve /metrics and /healthz on PORT (host: $SIGNUP_DLQ_HTTP_HOST, "
            "default 127.0.0.1)"
        ),
    )
    drop.add_argument(
        "--accounts-url",
        default=None,
        metavar="URL",
        help=(f"accounts' internal API (default: ${ACCOUNTS_URL_ENV} or {DEFAULT_ACCOUNTS_URL})"),
    )
    drop.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be dropped and change nothing (the messages are given back)",
    )
    drop.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    drop.set_defaults(handler=_drop_erased)
    return parser


def _drop_erased(args: argparse.Namespace, ctx: Context) -> int:
    """One DLQ (``QUEUE``) or every one (``--all``, once or ``--every`` SECONDS)."""
    if args.all:
        return cmd_drop_erased_all(args, ctx)
    if args.queue is None:
        raise UsageError("give a QUEUE (<queue>.dlq) or --all")
    if args.every is not None or args.metrics_port is not None:
        raise UsageError("--every and --metrics-port go with --all")
    return cmd_drop_erased(args, ctx)


def _console(stream: TextIO) -> Console:
    is_tty = stream.isatty()
    return Console(
        file=stream,
        width=None if is_tty else NON_TTY_WIDTH,
        highlight=False,
        emoji=False,
        soft_wrap=True,  # one message = one line, whatever the width (tables still fit)
    )


# --- entry point --------------------------------------------------------------------------


def _silence_pika() -> None:
    """pika logs connection failures itself; we report them in one line instead."""
    pika_logger = logging.getLogger("pika")
    pika_logger.addHandler(logging.NullHandler())
    pika_logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (exit 2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    _silence_pika()
    err = _console(sys.stderr)
    ctx = Context(
        amqp_url=resolve_amqp_url(args.amqp_url, os.environ),
        management_url=resolve_management_url(args.management_url, os.environ),
        out=_console(sys.stdout),
        err=err,
        stdout=sys.stdout,
        interactive=sys.stdin is not None and sys.stdin.isatty(),
        ask=input,
        environ=os.environ,
    )
    handler: Callable[[argparse.Namespace, Context], int] = args.handler
    try:
        return handler(args, ctx)
    except DlqError as exc:
        # Messages name the broker: never with a password, whatever built the text.
        err.print(Text(f"error: {printable(mask_credentials(str(exc)))}"))
        return exc.exit_code
    except KeyboardInterrupt:
        err.print(Text("interrupted"))
        return EXIT_INTERRUPTED
