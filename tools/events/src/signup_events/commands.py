"""The three commands: what they read, what they print (lines to ``out``, progress to ``err``)."""

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from signup_events import reader
from signup_events.broker import ServiceTarget, connection_to
from signup_events.config import reader_url, service_name, service_url
from signup_events.errors import EXIT_OK
from signup_events.records import Stats, check_range, json_lines, parse_bound, parse_end, table
from signup_events.replay import Replayer, final_line, progress_line


@dataclass(frozen=True)
class Context:
    env: Mapping[str, str]
    out: Callable[[str], None]
    err: Callable[[str], None]


def cmd_tail(args: argparse.Namespace, ctx: Context) -> int:
    with connection_to(reader_url(args.amqp_url, ctx.env)) as connection:
        records = reader.last(connection, args.n)
    if not records and not args.json:
        ctx.err("the history is empty")
    for line in json_lines(records) if args.json else table(records):
        ctx.out(line)
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, ctx: Context) -> int:
    start = parse_bound(args.start, "--from")
    end = parse_end(args.end)
    check_range(start, end)
    stats = Stats()
    began = time.monotonic()
    with connection_to(reader_url(args.amqp_url, ctx.env)) as connection:
        for _, record in reader.read(connection, start, end, prefetch=args.prefetch):
            stats.add(record)
            if stats.total % args.progress_every == 0:
                ctx.err(f"read {stats.total} (offset {stats.last_offset})")
    seconds = time.monotonic() - began
    if args.json:
        ctx.out(json.dumps({**stats.as_json(), "seconds": round(seconds, 3)}, sort_keys=True))
    else:
        for line in stats.lines():
            ctx.out(line)
        rate = stats.total / seconds if seconds > 0 else 0.0
        ctx.out(f"read {stats.total} event(s) in {seconds:.1f} s ({rate:.0f} events/s)")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    service = service_name(args.service)
    start = parse_bound(args.start, "--from")
    end = parse_end(args.end)
    check_range(start, end)
    with connection_to(service_url(service, args.amqp_url, ctx.env)) as connection:
        replayer = Replayer(
            service,
            ServiceTarget(connection),
            types=frozenset(args.type or ()),
            versions=frozenset(args.version or ()),
            dry_run=args.dry_run,
            progress_every=args.progress_every,
            on_progress=lambda outcome: ctx.err(progress_line(outcome)),
        )
        try:
            for message, record in reader.read(connection, start, end, prefetch=args.prefetch):
                replayer.handle(message, record)
        finally:
            ctx.out(final_line(service, replayer.outcome, args.dry_run))
    return EXIT_OK
