"""The commands of ``signup-dlq``: what each does with the broker, given a ``Context``."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TextIO

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
from signup_dlq.broker import Broker
from signup_dlq.config import vhost_from_amqp_url
from signup_dlq.deadletter import decode_dead_letter, is_dlq_name
from signup_dlq.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from signup_dlq.management import ManagementClient
from signup_dlq.render import describe, human_size, message_record, printable, render_body
from signup_dlq.replay import Replayer, default_target
from signup_dlq.walk import StoppableWalk

SHOW_DEFAULT_LIMIT = 10


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
    environ: Mapping[str, str] = field(default_factory=dict)


def require_dlq(queue: str, action: str) -> None:
    if not is_dlq_name(queue):
        raise UsageError(
            f"refusing to {action} {queue!r}: not a dead-letter queue "
            f"(the name must end in {DEAD_LETTER_SUFFIX})"
        )


def require_confirmation_possible(ctx: Context, action: str, queue: str, yes: bool) -> None:
    if not yes and not ctx.interactive:
        raise UsageError(
            f"refusing to {action} {queue} without --yes: stdin is not a terminal to confirm on"
        )


def confirm(ctx: Context, question: str) -> bool:
    try:
        answer = ctx.ask(question)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def progress_bar(ctx: Context, verb: str) -> Progress:
    """A progress bar on stderr, shown only on a terminal."""
    return Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.err,
        disable=not ctx.err.is_terminal,
        transient=False,
    )


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
    require_dlq(queue, "show")
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
    require_dlq(queue, "replay")
    require_confirmation_possible(ctx, "replay", queue, args.yes)
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
        if not args.yes and not confirm(
            ctx,
            f"Replay {to_move} message(s) from {queue} to their original queue "
            f"({fallback})? [y/N] ",
        ):
            ctx.out.print(Text("aborted: nothing replayed"))
            return EXIT_ERROR
        broker.enable_confirms()
        progress = progress_bar(ctx, "replaying")
        task = progress.add_task(queue, total=to_move)
        replayer = Replayer(
            broker,
            queue,
            max_messages=to_move,
            on_moved=lambda _target: progress.advance(task),
        )
        try:
            with progress, first_interrupt_stops(replayer):
                outcome = replayer.run()
        except KeyboardInterrupt:
            outcome = replayer.outcome
            outcome.stopped = True
    if outcome.stopped:
        ctx.out.print(
            Text(
                f"interrupted: replayed {outcome.moved} message(s) from {queue} to "
                f"{outcome.target_label(fallback)}; the rest is still in {queue}"
            )
        )
        return EXIT_INTERRUPTED
    ctx.out.print(
        Text(
            f"replayed {outcome.moved} message(s) from {queue} to {outcome.target_label(fallback)}"
        )
    )
    return EXIT_OK


@contextmanager
def first_interrupt_stops(walk: StoppableWalk) -> Iterator[None]:
    """Ctrl-C (SIGINT) finishes the message being moved, then stops; a second one aborts.

    Stopping at a message boundary lets the connection close cleanly. An interrupt that lands
    inside a frame write would leave the broker waiting for the rest of the frame and the
    close handshake unanswered.
    """

    def stop(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        walk.request_stop()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_purge(args: argparse.Namespace, ctx: Context) -> int:
    queue: str = args.queue
    require_dlq(queue, "purge")
    require_confirmation_possible(ctx, "purge", queue, args.yes)
    with Broker(ctx.amqp_url) as broker:
        depth = broker.depth(queue)
        if depth == 0:
            ctx.out.print(Text(f"{queue} is already empty: purged 0 message(s)"))
            return EXIT_OK
        if not args.yes and not confirm(ctx, f"Purge {depth} messages from {queue}? [y/N] "):
            ctx.out.print(Text("aborted: nothing purged"))
            return EXIT_ERROR
        purged = broker.purge(queue)
    ctx.out.print(Text(f"purged {purged} message(s) from {queue}"))
    return EXIT_OK
