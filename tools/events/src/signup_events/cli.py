"""``signup-events``: tail, replay and count the event history (``events.history``)."""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from signup_events import __version__
from signup_events.commands import Context, cmd_replay, cmd_stats, cmd_tail
from signup_events.errors import EXIT_ERROR, EXIT_INTERRUPTED, EventsError
from signup_events.reader import DEFAULT_PREFETCH
from signup_shared.cli import BROKER_ERRORS, masked_url

RANGE_HELP = "'first', a stream offset or an ISO 8601 time (UTC unless it names an offset)"
REPLAY_EPILOG = """\
Each event of the range whose type the service has a queue for (<service>.<event_name>) is
published into that queue, with the service's own broker user: through events.retry, where the
queue is bound by its own name (the way its retries come back), mandatory and confirmed one by
one. Its permissions let it reach its own queues and nothing else. The service may already have
handled some of these events: duplicates are absorbed by the service's inbox (the event id is
kept <SERVICE>_INBOX_RETENTION_DAYS days; older ones rely on the service's natural keys). A
consumer reads one version of an event type: pass --version to replay only that one.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _connection(parser: argparse.ArgumentParser, who: str) -> None:
    parser.add_argument("--amqp-url", metavar="URL", help=f"broker URL (default: {who})")


def _reading(parser: argparse.ArgumentParser, progress: int) -> None:
    parser.add_argument(
        "--prefetch",
        type=_positive_int,
        default=DEFAULT_PREFETCH,
        metavar="N",
        help=f"deliveries in flight while reading the stream (default: {DEFAULT_PREFETCH})",
    )
    parser.add_argument(
        "--progress-every",
        type=_positive_int,
        default=progress,
        metavar="N",
        help=f"a progress line on stderr every N events (default: {progress})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signup-events",
        description="Show, count and replay the event history (the stream events.history).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    reader_user = "$EVENTS_READER_AMQP_URL, else the local events-reader user"

    tail = commands.add_parser("tail", help="the last N events (id, type, version, producer...)")
    tail.add_argument("-n", type=_positive_int, default=20, metavar="N", help="default: 20")
    tail.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    _connection(tail, reader_user)
    tail.set_defaults(handler=cmd_tail)

    stats = commands.add_parser("stats", help="count a range's events by type, version and day")
    stats.add_argument("--from", dest="start", default="first", metavar="START", help=RANGE_HELP)
    stats.add_argument("--to", dest="end", metavar="END", help="an offset or a time, inclusive")
    stats.add_argument("--json", action="store_true", help="one JSON object instead of text")
    _reading(stats, 10_000)
    _connection(stats, reader_user)
    stats.set_defaults(handler=cmd_stats)

    replay = commands.add_parser(
        "replay",
        help="republish a range into ONE service's queues, with that service's permissions",
        description="Republish a range of the history into the queues of one service.",
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--service", required=True, metavar="S", help="e.g. notifications")
    replay.add_argument("--from", dest="start", required=True, metavar="START", help=RANGE_HELP)
    replay.add_argument("--to", dest="end", metavar="END", help="an offset or a time, inclusive")
    replay.add_argument(
        "--type", action="append", metavar="T", help="only this event type (repeatable)"
    )
    replay.add_argument(
        "--version", type=_positive_int, action="append", metavar="V", help="only this version"
    )
    replay.add_argument("--dry-run", action="store_true", help="read and count, publish nothing")
    _reading(replay, 1000)
    _connection(replay, "$<SERVICE>_AMQP_URL, else $AMQP_URL, else the service's local user")
    replay.set_defaults(handler=cmd_replay)
    return parser


def _quiet_libraries() -> None:
    """The runtime logs connection failures itself; the tool reports them in one line."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    logging.getLogger("amqp").setLevel(logging.CRITICAL)


def _printer(stream: Any) -> Callable[[str], None]:
    def write(line: str) -> None:
        print(line, file=stream, flush=True)

    return write


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (exit 2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    _quiet_libraries()
    ctx = Context(env=os.environ, out=_printer(sys.stdout), err=_printer(sys.stderr))
    handler: Callable[[argparse.Namespace, Context], int] = args.handler
    try:
        return handler(args, ctx)
    except EventsError as exc:
        ctx.err(f"error: {masked_url(str(exc))}")
        return exc.exit_code
    except BROKER_ERRORS as exc:  # the connection failed while reading or publishing
        ctx.err(f"error: the broker connection failed: {masked_url(str(exc)) or exc!r}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        ctx.err("interrupted")
        return EXIT_INTERRUPTED
