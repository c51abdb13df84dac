"""``signup-dlq``: list, show, replay and purge the dead-letter queues of the Signup Platform."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from signup_contracts.amqp import DEAD_LETTER_SUFFIX
from signup_dlq import __version__
from signup_dlq.broker import Broker
from signup_dlq.config import (
    AMQP_URL_ENV,
    MANAGEMENT_URL_ENV,
    mask_credentials,
    resolve_amqp_url,
    resolve_management_url,
    vhost_from_amqp_url,
)
from signup_dlq.deadletter import decode_dead_letter, is_dlq_name
from signup_dlq.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DlqError,
    UsageError,
)
from signup_dlq.management import ManagementClient
from signup_dlq.render import describe, human_size, message_record, printable, render_body
from signup_dlq.replay import Replayer, default_target

SHOW_DEFAULT_LIMIT = 10
NON_TTY_WIDTH = 200


@dataclass
class Context:
    """What a command needs from the outside world (replaced in tests)."""

    amqp_url: str
    management_url: str
    out: Console
    err: Console
    stdout: TextIO
    interactive: bool
    ask: Callable[[str], str]


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
        description="Inspect, replay and purge the dead-letter queues (<queue>.dlq).",
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
    return parser


def _console(stream: TextIO) -> Console:
    is_tty = stream.isatty()
    return Console(
        file=stream,
        width=None if is_tty else NON_TTY_WIDTH,
        highlight=False,
        emoji=False,
        soft_wrap=True,  # one message = one line, whatever the width (tables still fit)
    )


def _require_dlq(queue: str, action: str) -> None:
    if not is_dlq_name(queue):
        raise UsageError(
            f"refusing to {action} {queue!r}: not a dead-letter queue "
            f"(the name must end in {DEAD_LETTER_SUFFIX})"
        )


def _require_confirmation_possible(ctx: Context, action: str, queue: str, yes: bool) -> None:
    if not yes and not ctx.interactive:
        raise UsageError(
            f"refusing to {action} {queue} without --yes: stdin is not a terminal to confirm on"
        )


def _confirm(ctx: Context, question: str) -> bool:
    try:
        answer = ctx.ask(question)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


# --- commands -----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    vhost = vhost_from_amqp_url(ctx.amqp_url)
    queues = ManagementClient(ctx.management_url).list_dlqs(vhost)
    if args.json:
        print(json.dumps([asdict(q) for q in queues], indent=2), file=ctx.stdout)
        return EXIT_OK
    if not queues:
        ctx.out.print(Text(f"no dead-letter queues (*{DEAD_LETTER_SUFFIX}) in vhost {vhost!r}"))
        return EXIT_OK
    table = Table(title=f"dead-letter queues in vhost {vhost!r}", title_justify="left")
    table.add_column("queue", no_wrap=True)
    table.add_column("messages", justify="right")
    table.add_column("ready", justify="right")
    table.add_column("unacked", justify="right")
    table.add_column("consumers", justify="right")
    table.add_column("type")
    for queue in queues:
        table.add_row(
            Text(printable(queue.name)),
            Text(str(queue.messages), style="bold red" if queue.messages else ""),
            str(queue.messages_ready),
            str(queue.messages_unacknowledged),
            str(queue.consumers),
            queue.queue_type,
        )
    ctx.out.print(table)
    total = sum(q.messages for q in queues)
    ctx.out.print(Text(f"{len(queues)} dead-letter queue(s), {total} message(s) in total"))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    queue: str = args.queue
    _require_dlq(queue, "show")
    with Broker(ctx.amqp_url) as broker:
        depth = broker.depth(queue)
        messages = broker.peek(queue, args.limit) if depth else []
    if args.json:
        records = [message_record(i, m) for i, m in enumerate(messages, start=1)]
        print(json.dumps(records, indent=2, ensure_ascii=False), file=ctx.stdout)
        return EXIT_OK
    ctx.out.print(Text(f"{queue}: {depth} message(s), showing {len(messages)} (left in the queue)"))
    for index, message in enumerate(messages, start=1):
        dead_letter = decode_dead_letter(message.headers, message.body, message.properties)
        ctx.out.print(Rule(Text(f"message {index}/{len(messages)}"), align="left"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for label, value in describe(dead_letter):
            grid.add_row(label, Text(value))
        body = render_body(message.body)
        kind = "JSON" if body.is_json else "not JSON"
        truncated = ", truncated" if body.truncated else ""
        grid.add_row("body", Text(f"{human_size(body.size)} ({kind}{truncated})"))
        ctx.out.print(grid)
        ctx.out.print(Text(body.text))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    queue: str = args.queue
    _require_dlq(queue, "replay")
    _require_confirmation_possible(ctx, "replay", queue, args.yes)
    fallback = default_target(queue)
    with Broker(ctx.amqp_url) as broker:
        depth = broker.depth(queue)
        # Bounded by the depth seen now: messages that fail again during the replay and come
        # back into the DLQ are not replayed a second time.
        to_move = depth if args.limit is None else min(args.limit, depth)
        if to_move == 0:
            ctx.out.print(Text(f"{queue} is empty"))
            ctx.out.print(Text(f"replayed 0 message(s) from {queue} to {fallback}"))
            return EXIT_OK
        if not args.yes and not _confirm(
            ctx,
            f"Replay {to_move} message(s) from {queue} to their original queue "
            f"({fallback})? [y/N] ",
        ):
            ctx.out.print(Text("aborted: nothing replayed"))
            return EXIT_ERROR
        broker.enable_confirms()
        progress = Progress(
            TextColumn("replaying {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=ctx.err,
            disable=not ctx.err.is_terminal,
            transient=False,
        )
        task = progress.add_task(queue, total=to_move)
        replayer = Replayer(
            broker,
            queue,
            max_messages=to_move,
            on_moved=lambda _target: progress.advance(task),
        )
        try:
            with progress:
                outcome = replayer.run()
        except KeyboardInterrupt:
            moved = replayer.outcome
            ctx.out.print(
                Text(
                    f"interrupted: replayed {moved.moved} message(s) from {queue} to "
                    f"{moved.target_label(fallback)}; the rest is still in {queue}"
                )
            )
            return EXIT_INTERRUPTED
    ctx.out.print(
        Text(
            f"replayed {outcome.moved} message(s) from {queue} to {outcome.target_label(fallback)}"
        )
    )
    return EXIT_OK


def cmd_purge(args: argparse.Namespace, ctx: Context) -> int:
    queue: str = args.queue
    _require_dlq(queue, "purge")
    _require_confirmation_possible(ctx, "purge", queue, args.yes)
    with Broker(ctx.amqp_url) as broker:
        depth = broker.depth(queue)
        if depth == 0:
            ctx.out.print(Text(f"{queue} is already empty: purged 0 message(s)"))
            return EXIT_OK
        if not args.yes and not _confirm(ctx, f"Purge {depth} messages from {queue}? [y/N] "):
            ctx.out.print(Text("aborted: nothing purged"))
            return EXIT_ERROR
        purged = broker.purge(queue)
    ctx.out.print(Text(f"purged {purged} message(s) from {queue}"))
    return EXIT_OK


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
