"""``signup-dlq drop-erased --all [--every SECONDS] [--metrics-port PORT]``: every DLQ, once or
periodically (the ``dlq-janitor`` role of deploy/roles.toml runs it with ``--every``).

SIGTERM (and Ctrl-C) ends the pass in progress at the next message boundary and then the
process: exit 0 under ``--every`` (a stop asked for is how a periodic runner ends), 130 for a
single pass, as the other commands. A single pass that fails exits 1; under ``--every`` a
failed pass is reported and the next one tries again.
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.text import Text

from signup_dlq.accounts import AccountsClient, api_key_from_environment
from signup_dlq.broker import Broker
from signup_dlq.commands import Context
from signup_dlq.config import resolve_accounts_url, vhost_from_amqp_url
from signup_dlq.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from signup_dlq.janitor import Janitor
from signup_dlq.janitor_metrics import JanitorMetrics, serve
from signup_dlq.management import ManagementClient
from signup_dlq.render import printable

HTTP_HOST_ENV = "SIGNUP_DLQ_HTTP_HOST"
DEFAULT_HTTP_HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(janitor: Janitor) -> Iterator[None]:
    """SIGTERM and SIGINT ask the janitor to stop at the next message boundary."""

    def stop(_signum: int, _frame: object) -> None:
        janitor.request_stop()

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def check_all_arguments(args: argparse.Namespace) -> None:
    if args.queue is not None:
        raise UsageError("give either a QUEUE or --all, not both")
    if not args.yes and not args.dry_run:
        raise UsageError(
            "--all asks no question: add --yes (see what it would drop with --dry-run first)"
        )
    if args.every is not None and args.dry_run:
        raise UsageError("--every repeats a real pass: --dry-run is for one pass")
    if args.metrics_port is not None and args.every is None:
        raise UsageError("--metrics-port serves the metrics of --every")


def cmd_drop_erased_all(args: argparse.Namespace, ctx: Context) -> int:
    check_all_arguments(args)
    accounts = AccountsClient(
        resolve_accounts_url(args.accounts_url, ctx.environ),
        api_key_from_environment(ctx.environ),
    )
    management = ManagementClient(ctx.management_url)
    vhost = vhost_from_amqp_url(ctx.amqp_url)

    def report(line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ctx.out.print(Text(f"{stamp} {printable(line)}"))
        ctx.out.file.flush()  # a log line per queue and pass, as it happens

    metrics = JanitorMetrics()
    janitor = Janitor(
        lambda: Broker(ctx.amqp_url),
        lambda: [queue.name for queue in management.list_dlqs(vhost)],
        accounts,
        dry_run=args.dry_run,
        report=report,
        finished=metrics.record,
    )
    if args.every is None:
        with stop_on_signals(janitor):
            sweep = janitor.sweep()
        if sweep.stopped:
            return EXIT_INTERRUPTED
        return EXIT_ERROR if sweep.error else EXIT_OK
    server = None
    if args.metrics_port is not None:
        host = ctx.environ.get(HTTP_HOST_ENV) or DEFAULT_HTTP_HOST
        server = serve(metrics, args.metrics_port, host)
        report(f"metrics on http://{host}:{args.metrics_port}/metrics")
    report(
        f"drop-erased --all every {args.every} s (pid {os.getpid()}): dead-letter queues of "
        f"vhost {vhost!r}, accounts at {accounts.display_url}"
    )
    try:
        with stop_on_signals(janitor):
            passes = janitor.run_every(args.every)
    finally:
        if server is not None:
            server.shutdown()
    report(f"drop-erased --all stopped after {passes} pass(es)")
    return EXIT_OK
