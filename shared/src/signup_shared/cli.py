"""The command line every service shares: ``<service> <command> [options]``, and its web program.

``run`` gives every service the same program: one subcommand per entry of its ``commands``
(each answers ``--help``), settings from the environment, logging and tracing. A service that
has ``migrate`` also gets ``downgrade`` and ``revision``, and ``migrate``/``downgrade`` take
``--sql`` (print the SQL instead of running it); the service's own ``migrate`` function stays
``cli.migrate(database_url, MIGRATIONS_DIR)``, which carries out whichever was asked.

A service that has ``consume`` also gets ``catch-up --from first|<offset>|<ISO time>`` (read the
event history through its handlers, then exit) and ``consume --catch-up-from`` (the same, then
consume): see ``signup_shared.messaging.catch_up``.

``serve_web`` is the same for a web process (``accounts-web``): ``--help``, ``--host`` and
``--port``, settings and the same one-line errors; its ``serve`` runs the server and logs the
addresses once they are bound (as ``accounts.web.AnnouncingServer`` does).

When a command fails because PostgreSQL or RabbitMQ cannot be reached (or refuses the login),
the program prints one line naming the address, with its password masked, and what to do, and
exits with ``EXIT_UNAVAILABLE`` instead of a traceback. Invalid settings get one line each
and ``EXIT_USAGE``.
"""

import argparse
import contextvars
import re
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import amqp.exceptions
import kombu.exceptions
import psycopg
import pydantic
import sqlalchemy.exc
import structlog

from signup_shared import lifecycle, migrations, tracing
from signup_shared.logging import configure_logging
from signup_shared.messaging import history, topology
from signup_shared.messaging.connection import connect
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings, environment_help

S = TypeVar("S", bound=ServiceSettings)
log = structlog.get_logger(__name__)

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: a service this program needs is unavailable
MASK = "***"
_PASSWORD = re.compile(r"(?<=://)([^:@/?#;]*):[^@/;]*@")
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    psycopg.OperationalError,
)
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    amqp.exceptions.AMQPError,
    ConnectionError,
    socket.gaierror,
    TimeoutError,
)


def masked_url(url: str) -> str:
    """``url`` with every password replaced by ``***`` (each of a ``;``-separated list too)."""
    return _PASSWORD.sub(rf"\1:{MASK}@", url)


@dataclass(frozen=True)
class MigrationRequest:
    """What ``migrate`` was asked to do (set by ``run`` from the command line)."""

    action: str = "upgrade"  # upgrade | downgrade | revision
    revision: str = "head"
    sql: bool = False
    message: str = ""
    autogenerate: bool = False


_REQUEST: contextvars.ContextVar[MigrationRequest | None] = contextvars.ContextVar(
    "migration_request", default=None
)


def run(
    prog: str,
    description: str | None,
    settings_class: Callable[[], S],
    commands: Mapping[str, Callable[[S], None]],
    argv: list[str] | None = None,
) -> None:
    lifecycle.die_with_parent()  # first: this process must not outlive its supervisor
    args = _parser(prog, description, commands).parse_args(argv)
    settings = _catching_up(prog, args, _settings(prog, settings_class))
    configure_logging(f"{prog}-{args.command}", settings.log_level, settings.log_format)
    tracing.configure_tracing(f"{prog}-{args.command}")
    name = {"downgrade": "migrate", "revision": "migrate", "catch-up": "consume"}.get(
        args.command, args.command
    )
    token = _REQUEST.set(_request(args))
    try:
        _guarded(f"{prog} {args.command}", settings, lambda: commands[name](settings))
    finally:
        _REQUEST.reset(token)
        tracing.shutdown()  # hands finished spans to the exporter before the process ends


def _parser(
    prog: str, description: str | None, commands: Mapping[str, Callable[..., None]]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name in sorted(commands):
        doc = (commands[name].__doc__ or "").strip().splitlines()
        command = sub.add_parser(name, help=doc[0] if doc else None)
        if name == "consume":
            command.add_argument(
                "--catch-up-from",
                metavar="START",
                help="first catch up from the event history: first, an offset or an ISO time",
            )
        if name == "migrate":
            command.add_argument("--to", dest="revision", default="head", help="default: head")
            command.add_argument("--sql", action="store_true", help="print the SQL, run nothing")
    if "consume" in commands:
        catch_up = sub.add_parser(
            "catch-up", help="run the event history through the handlers (up to now), then exit"
        )
        catch_up.add_argument(
            "--from",
            dest="catch_up_from",
            metavar="START",
            required=True,
            help="first | a stream offset | an ISO 8601 time (UTC unless it names an offset)",
        )
    if "migrate" in commands:
        down = sub.add_parser("downgrade", help="undo migrations down to a revision")
        down.add_argument("revision", help="target revision: an id, -1, or base")
        down.add_argument("--sql", action="store_true", help="print the SQL, run nothing")
        new = sub.add_parser("revision", help="write a new migration file")
        new.add_argument("-m", "--message", required=True, help="what the migration does")
        new.add_argument(
            "--autogenerate", action="store_true", help="diff the models with the database"
        )
    return parser


def _catching_up(prog: str, args: argparse.Namespace, settings: S) -> S:
    """The settings with the catch-up the command line asked for (it overrides the env)."""
    start = getattr(args, "catch_up_from", None)
    if start is None:
        return settings
    try:
        history.parse_position(start)
    except ValueError as error:
        sys.stderr.write(f"{prog}: {error}\n")
        raise SystemExit(EXIT_USAGE) from None
    update = {"catch_up_from": start.strip(), "catch_up_then_exit": args.command == "catch-up"}
    return settings.model_copy(update=update)


def _request(args: argparse.Namespace) -> MigrationRequest:
    if args.command == "migrate":
        return MigrationRequest("upgrade", args.revision, args.sql)
    if args.command == "downgrade":
        return MigrationRequest("downgrade", args.revision, args.sql)
    if args.command == "revision":
        return MigrationRequest("revision", message=args.message, autogenerate=args.autogenerate)
    return MigrationRequest()


def _settings(prog: str, settings_class: Callable[[], S]) -> S:
    try:
        return settings_class()
    except pydantic.ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            sys.stderr.write(f"{prog}: invalid setting {where}: {problem['msg']}\n")
        raise SystemExit(EXIT_USAGE) from None


def _guarded(program: str, settings: ServiceSettings, body: Callable[[], None]) -> None:
    """Run ``body``; an unreachable server or a failed setup ends the program with one line."""
    try:
        body()
    except (migrations.SetupError, history.HistoryError) as error:
        sys.stderr.write(f"{program}: {masked_url(str(error))}\n")
        raise SystemExit(EXIT_UNAVAILABLE) from None
    except BaseException as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        sys.stderr.write(f"{program}: {line}\n")
        raise SystemExit(EXIT_UNAVAILABLE) from None


def _prefix(settings: ServiceSettings) -> str:
    return str(settings.model_config.get("env_prefix") or "")


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split()) or type(original).__name__
    return masked_url(text).rstrip(".?! ")[:300]


def failure_line(error: BaseException, settings: ServiceSettings) -> str | None:
    """One line for an error of PostgreSQL or RabbitMQ (None for any other error)."""
    if isinstance(error, DATABASE_ERRORS):
        variable = f"{_prefix(settings)}DATABASE_URL"
        return (
            f"PostgreSQL at {masked_url(settings.database_url)} failed: {_reason(error)}; "
            f"start it (make servers) or point {variable} at a running server with a valid login"
        )
    if isinstance(error, BROKER_ERRORS):
        variable = f"{_prefix(settings)}AMQP_URL (or AMQP_URL)"
        return (
            f"RabbitMQ at {masked_url(settings.amqp_url)} failed: {_reason(error)}; "
            f"start it (make servers) or point {variable} at a running broker with a valid login"
        )
    return None


def migrate(database_url: str, migrations_dir: Path) -> None:
    """``<service> migrate|downgrade|revision``: whichever the command line asked for.

    ``migrate`` creates the service's database if missing, then upgrades (``--to``, default
    head); ``--sql`` prints the SQL of the upgrade (or downgrade) and touches no database.
    """
    request = _REQUEST.get() or MigrationRequest()
    if request.action == "revision":
        path = migrations.revision(
            database_url, migrations_dir, request.message, autogenerate=request.autogenerate
        )
        sys.stdout.write(f"wrote {path}\n")
        return
    if request.action == "downgrade":
        migrations.downgrade(database_url, migrations_dir, request.revision, sql=request.sql)
        if not request.sql:
            log.info("database.downgraded", revision=request.revision)
        return
    if request.sql:
        migrations.upgrade(database_url, migrations_dir, request.revision, sql=True)
        return
    created = migrations.ensure_database(database_url)
    migrations.upgrade(database_url, migrations_dir, request.revision)
    log.info("database.migrated", created=created, revision=request.revision)


def declare_topology(amqp_url: str, queues: Sequence[ConsumerQueue]) -> None:
    """``<service> topology``: declare the core exchanges and the service's queues."""
    with connect(amqp_url, name="topology") as connection:
        topology.declare(connection, queues)
    log.info("topology.declared", queues=[queue.name for queue in queues])


def serve_web(
    prog: str,
    description: str | None,
    settings_class: type[S],
    serve: Callable[[S, str, int], None],
    argv: list[str] | None = None,
    help_settings: Sequence[str] = (),
) -> None:
    """A web program: ``--help``, ``--host``/``--port`` over the settings; ``serve(settings,
    host, port)`` runs the server (uvicorn) and logs where it listens once bound."""
    lifecycle.die_with_parent()  # first: this process must not outlive its supervisor
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=environment_help(settings_class, help_settings) if help_settings else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind (default: the settings' http_host)")
    parser.add_argument("--port", type=int, help="port to serve (default: the settings')")
    args = parser.parse_args(argv)
    settings = _settings(prog, settings_class)
    host, port = args.host or settings.http_host, args.port or web_port(settings)
    configure_logging(prog, settings.log_level, settings.log_format)
    tracing.configure_tracing(prog)
    try:
        _guarded(prog, settings, lambda: serve(settings, host, port))
    finally:
        tracing.shutdown()


def web_port(settings: Any) -> int:
    """The API port of a service's settings (``web_port``; ``http_port`` before the rename)."""
    port = getattr(settings, "web_port", None) or getattr(settings, "http_port", None)
    if not isinstance(port, int):
        raise TypeError(f"{type(settings).__name__} has no web_port")
    return port
