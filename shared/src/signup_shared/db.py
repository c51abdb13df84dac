"""Database helpers: engine and sessions (psycopg 3), and the ``transaction`` decorator."""

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
R = TypeVar("R")


class TransactionalSession(Protocol):
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


S = TypeVar("S", bound=TransactionalSession)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        # Error text (logged, and copied into dead-letter headers) must not carry bound
        # parameters: they are recipients' emails, phone numbers and names.
        hide_parameters=True,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


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
