"""Database helpers: engine and sessions (psycopg 3), and the ``transaction`` decorator.

Stale connections (PostgreSQL restarted, a connection cut): a pooled connection that has sat
unused for ``PING_AFTER_IDLE_SECONDS`` or more is pinged when it is checked out, and replaced
if the ping fails (SQLAlchemy's ``pool_pre_ping`` did that on every checkout, one round trip
per transaction: ~5 % of a consumer's CPU per message at 20 messages/s). A connection used
less than that ago is trusted: if the server went away meanwhile, the transaction's first
statement fails with a disconnect error, SQLAlchemy invalidates that connection and every
older one in the pool, and the caller's ordinary outage path takes over (a consumer holds the
message and retries it on a new connection; a relay retries its batch; a web request answers
500 and the next one gets a new connection), exactly as for a server lost in the middle of a
transaction.
"""

import functools
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
R = TypeVar("R")


class TransactionalSession(Protocol):
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


S = TypeVar("S", bound=TransactionalSession)


PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "signup_last_used"  # in the pool entry's ``info``: dropped with its DBAPI connection


def make_engine(
    url: str, pool_size: int = 10, ping_after_idle: float = PING_AFTER_IDLE_SECONDS
) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        # Error text (logged, and copied into dead-letter headers) must not carry bound
        # parameters: they are recipients' emails, phone numbers and names.
        hide_parameters=True,
    )
    ping_idle_connections(engine, ping_after_idle)
    return engine


def ping_idle_connections(engine: Engine, after: float) -> None:
    """Ping a pooled connection on checkout when it sat unused ``after`` seconds or more; a
    failed ping makes the pool replace it (``DisconnectionError``: up to three new tries)."""

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not needs_ping(record.info.get(_LAST_USED), time.monotonic(), after):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"stale connection: {error}") from error


def needs_ping(last_used: float | None, now: float, after: float) -> bool:
    """A connection never checked in is new (just connected); one unused for ``after`` s is not."""
    return last_used is not None and now - last_used >= after


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for lookups that need no transaction: each statement runs on its own
    (autocommit), so a read costs its one round trip, without ``BEGIN`` before it and
    ``ROLLBACK`` after (psycopg sends neither outside a transaction). It reads what is
    committed, as the first statement of a READ COMMITTED transaction would. The pooled
    connection gets the engine's own isolation level back when it is returned (SQLAlchemy)."""
    return sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


def transaction(fn: Callable[Concatenate[S, P], R]) -> Callable[..., R]:
    """Run ``fn(session, ...)`` as one transaction of ``session``.

    Callers choose the outcome with the keyword ``persist``:
    ``True`` (default) commits, ``False`` always rolls back, ``None`` does neither so a test can
    assert inside the still-open transaction. Any exception rolls back and is re-raised.
    Only the outermost layer (views, consumers, relays) decorates with it.
    """

    @functools.wraps(fn)
    def wrapper(session: S, *args: Any, persist: bool | None = True, **kwargs: Any) -> R:
        try:
            result = fn(session, *args, **kwargs)
            if persist is True:
                session.commit()
            elif persist is False:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        return result

    return wrapper


def open_database(url: str, pool_size: int = 10) -> tuple[Engine, sessionmaker[Session]]:
    """The engine of a service's database and the session factory bound to it."""
    engine = make_engine(url, pool_size)
    return engine, make_session_factory(engine)
