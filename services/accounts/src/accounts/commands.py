"""Operator commands of accounts: API keys and outstanding erasures.

    accounts keys create --client crm --scope users:read [--scope users:erase] [--valid-days 90]
    accounts keys list
    accounts keys revoke KEY_ID
    accounts erasures [--pending] [--json]

``keys create`` prints the key once (only its SHA-256 is stored): hand it to the client's
secret store. Rotation: create a second key (a client may hold two valid keys), deploy it,
then revoke the old one. ``erasures`` lists erasures, oldest first, and which holders have not
confirmed yet; ``--pending`` only those not complete. Exit status 1 for a refused request.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy.orm import Session, sessionmaker

from accounts import bootstrap, erasure, keys
from accounts.settings import AccountsSettings
from signup_shared.db import transaction
from signup_shared.logging import configure_logging

COMMANDS = ("keys", "erasures")


def wanted(argv: Sequence[str] | None = None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return list(args[:1]) in ([name] for name in COMMANDS)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accounts", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    key = commands.add_parser("keys", help="API keys of the internal API's clients")
    actions = key.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="issue a key (printed once)")
    create.add_argument("--client", required=True, help="the calling system, e.g. crm")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        choices=[scope.value for scope in keys.Scope],
        help="repeatable",
    )
    create.add_argument("--valid-days", type=int, default=None, help="default: no expiry")
    actions.add_parser("list", help="every key (never the secret)")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    erasures = commands.add_parser("erasures", help="erasures and the holders not confirmed yet")
    erasures.add_argument("--pending", action="store_true", help="only erasures not complete")
    erasures.add_argument("--json", action="store_true", help="one JSON document")
    return parser


@transaction
def _keys(session: Session, options: argparse.Namespace, out: TextIO) -> int:
    if options.action == "create":
        issued = keys.create_key(session, options.client, options.scopes, options.valid_days)
        expires = issued.expires_at.isoformat() if issued.expires_at else "never"
        out.write(
            f"key {issued.key_id} for {issued.client}, scopes {' '.join(issued.scopes)}, "
            f"expires {expires}\n{issued.token}\n"
            "(shown once: store it in the client's secret store)\n"
        )
        return 0
    if options.action == "revoke":
        changed = keys.revoke_key(session, options.key_id)
        out.write(f"key {options.key_id} {'revoked' if changed else 'was revoked already'}\n")
        return 0
    now = datetime.now(UTC)
    for info in keys.list_keys(session):
        state = "revoked" if info.revoked_at else "valid"
        if state == "valid" and info.expires_at is not None and info.expires_at <= now:
            state = "expired"
        expires = info.expires_at.isoformat() if info.expires_at else "never"
        out.write(
            f"{info.key_id}  {info.client:<16} {state:<8} {' '.join(info.scopes):<24} "
            f"created {info.created_at.isoformat()}  expires {expires}\n"
        )
    return 0


@transaction
def _erasures(
    session: Session, options: argparse.Namespace, holders: Sequence[str], out: TextIO
) -> int:
    found = erasure.erasures(session, holders, outstanding_only=options.pending)
    if options.json:
        out.write(json.dumps([_as_json(state) for state in found], indent=2) + "\n")
        return 0
    if not found:
        out.write("no outstanding erasures\n" if options.pending else "no erasures\n")
        return 0
    now = datetime.now(UTC)
    for state in found:
        age = int((now - state.requested_at).total_seconds())
        waiting = ", ".join(state.waiting_for) or "-"
        out.write(
            f"{state.user_id}  {state.status.value:<8} requested {state.requested_at.isoformat()}"
            f" ({age}s ago) by {state.requested_by}  waiting for: {waiting}\n"
        )
    return 0


def _as_json(state: erasure.ErasureState) -> dict[str, Any]:
    return {
        "user_id": str(state.user_id),
        "status": state.status.value,
        "requested_at": state.requested_at.isoformat(),
        "requested_by": state.requested_by,
        "completed_at": state.completed_at.isoformat() if state.completed_at else None,
        "confirmed": list(state.confirmed),
        "waiting_for": list(state.waiting_for),
    }


def run(
    sessions: sessionmaker[Session],
    options: argparse.Namespace,
    holders: Sequence[str],
    out: TextIO,
) -> int:
    """Carry out parsed options; 0 when done, 1 when the request was refused."""
    try:
        with sessions() as session:
            if options.command == "keys":
                return int(_keys(session, options, out, persist=options.action != "list"))
            return int(_erasures(session, options, holders, out, persist=False))
    except keys.KeyRefusedError as exc:
        out.write(f"refused: {exc}\n")
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    options = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    settings = AccountsSettings()
    configure_logging(f"accounts-{options.command}", settings.log_level, settings.log_format)
    engine, sessions = bootstrap.database(settings)
    try:
        status = run(sessions, options, settings.erasure_holders, sys.stdout)
    finally:
        engine.dispose()
    sys.exit(status)
