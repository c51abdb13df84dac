"""``signup-dlq drop-erased``: drop the dead letters of erased users, keep every other one."""

from __future__ import annotations

import argparse

from rich.text import Text

from signup_dlq.accounts import AccountsClient, api_key_from_environment
from signup_dlq.broker import Broker
from signup_dlq.commands import (
    Context,
    confirm,
    first_interrupt_stops,
    progress_bar,
    require_confirmation_possible,
    require_dlq,
)
from signup_dlq.config import resolve_accounts_url
from signup_dlq.erased import Decision, DropOutcome, ErasedDropper
from signup_dlq.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from signup_dlq.render import printable


def _would_drop(decision: Decision) -> str:
    return printable(
        f"would drop {decision.message_id} ({decision.subject.event}, "
        f"user {decision.subject.user_id})"
    )


def _summary(outcome: DropOutcome, queue: str, dry_run: bool) -> str:
    asked = f"asked accounts about {outcome.lookups} user(s)"
    if dry_run:
        kept = outcome.kept_summary().replace("kept", "would keep", 1)
        return (
            f"dry run: would drop {outcome.dropped} dead letter(s) of erased users from {queue}, "
            f"{kept}; {asked}; nothing changed"
        )
    return (
        f"dropped {outcome.dropped} dead letter(s) of erased users from {queue}, "
        f"{outcome.kept_summary()}; {asked}"
    )


def cmd_drop_erased(args: argparse.Namespace, ctx: Context) -> int:
    queue: str = args.queue
    dry_run: bool = args.dry_run
    require_dlq(queue, "drop dead letters from")
    if not dry_run:
        require_confirmation_possible(ctx, "drop dead letters from", queue, args.yes)
    accounts = AccountsClient(
        resolve_accounts_url(args.accounts_url, ctx.environ),
        api_key_from_environment(ctx.environ),
    )
    would_drop: list[str] = []
    with Broker(ctx.amqp_url) as broker:
        # Bounded by the depth seen now: the kept messages go back to the end of the queue and
        # must not be walked twice (nor dead letters that arrive meanwhile).
        depth = broker.depth(queue)
        if depth == 0:
            ctx.out.print(Text(f"{queue} is empty: dropped 0, kept 0"))
            return EXIT_OK
        if not dry_run and not args.yes:
            question = (
                f"Drop the dead letters of erased users from {queue} ({depth} message(s) to "
                f"check with accounts at {accounts.display_url}; the others are put back "
                "unchanged)? [y/N] "
            )
            if not confirm(ctx, question):
                ctx.out.print(Text("aborted: nothing dropped"))
                return EXIT_ERROR
        if not dry_run:
            broker.enable_confirms()
        progress = progress_bar(ctx, "checking")
        task = progress.add_task(queue, total=depth)

        def handled(decision: Decision) -> None:
            progress.advance(task)
            if dry_run and decision.keep is None:
                would_drop.append(_would_drop(decision))

        dropper = ErasedDropper(
            broker, queue, accounts, max_messages=depth, dry_run=dry_run, on_handled=handled
        )
        try:
            with progress, first_interrupt_stops(dropper):
                outcome = dropper.run()
        except KeyboardInterrupt:
            outcome = dropper.outcome
            outcome.stopped = True
    for line in would_drop:
        ctx.out.print(Text(line))
    summary = _summary(outcome, queue, dry_run)
    if outcome.stopped:
        ctx.out.print(Text(f"interrupted: {summary}; the rest is still in {queue}"))
        return EXIT_INTERRUPTED
    ctx.out.print(Text(summary))
    return EXIT_OK
