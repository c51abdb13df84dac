"""``<service> outbox``: the operator's view of parked outbox rows.

    accounts outbox parked                   # list the rows the relay parked, oldest first
    accounts outbox retry --id EVENT_ID ...  # put these parked rows back in line
    accounts outbox retry --all              # put every parked row back in line

A row is parked when it cannot be published (see ``signup_shared.outbox.relay``). Retrying
clears the mark and the refusal count; the running relay takes the row on its next poll, and
parks it again (with the new reason) if it still cannot be published: fix the cause first.
"""

import argparse
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import TextIO, TypeVar

from sqlalchemy import Engine

from signup_shared.logging import configure_logging
from signup_shared.outbox.queries import OutboxQueries, ParkedRow
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
COMMAND = "outbox"


def wanted(argv: Sequence[str] | None = None) -> bool:
    """Whether the command line asks for ``outbox`` (its sub-commands take their own options)."""
    args = sys.argv[1:] if argv is None else argv
    return list(args[:1]) == [COMMAND]


def parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{prog} {COMMAND}", description="Outbox rows the relay parked: list or retry them."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("parked", help="list the parked rows, oldest first")
    retry = actions.add_parser("retry", help="put parked rows back in line for the relay")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--id",
        dest="ids",
        action="append",
        type=uuid.UUID,
        metavar="EVENT_ID",
        help="the event id of a parked row (repeatable)",
    )
    which.add_argument("--all", action="store_true", help="every parked row")
    return parser


def main(
    prog: str,
    settings_class: Callable[[], S],
    relay: Callable[[S], OutboxRelay],
    argv: Sequence[str] | None = None,
) -> None:
    """Run ``<prog> outbox ...`` (``argv`` starts with ``outbox``) and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)[1:]
    options = parser(prog).parse_args(args)
    settings = settings_class()
    configure_logging(f"{prog}-{COMMAND}", settings.log_level, settings.log_format)
    outbox = relay(settings)
    try:
        status = run(outbox.engine, outbox.queries, options, sys.stdout)
    finally:
        outbox.close()
        outbox.engine.dispose()
    sys.exit(status)


def run(engine: Engine, queries: OutboxQueries, options: argparse.Namespace, out: TextIO) -> int:
    """Carry out parsed options; 0 when done, 1 when some given id was not a parked row."""
    if options.action == "parked":
        with engine.connect() as connection:
            rows = queries.list_parked(connection)
        out.write(render(rows))
        return 0
    ids: list[uuid.UUID] | None = None if options.all else list(options.ids)
    with engine.begin() as connection:
        parked = {row.event_id for row in queries.list_parked(connection)}
        retried = queries.unpark(connection, ids)
    out.write(f"{retried} parked row(s) put back in line for the relay\n")
    missing = [str(event_id) for event_id in ids or () if event_id not in parked]
    if missing:
        out.write(f"not parked (unknown or already published): {', '.join(missing)}\n")
        return 1
    return 0


def render(rows: Sequence[ParkedRow]) -> str:
    if not rows:
        return "no parked rows\n"
    lines = [f"{len(rows)} parked row(s):"]
    for row in rows:
        lines.append(
            f"{row.event_id}  position={row.position}  {row.event_type}  "
            f"created={row.created_at.isoformat()}  parked={row.parked_at.isoformat()}  "
            f"refusals={row.refusals}\n    reason: {row.reason}"
        )
    return "\n".join(lines) + "\n"
