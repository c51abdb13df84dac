"""Stale pooled connections (the server closed them): what ``make_engine`` does about them."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.pool import NullPool

from signup_shared.db import make_engine
from signup_shared.testing import scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with scratch_database("reconnect") as engine:
        yield engine.url.render_as_string(hide_password=False)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(url: str, pid: int) -> None:
    """Close a pooled connection's backend from outside the pool, as a server restart would."""
    killer = create_engine(url, poolclass=NullPool)
    try:
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        killer.dispose()


def counting_pings(engine: Engine) -> list[Any]:
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def test_an_idle_connection_that_died_is_pinged_and_replaced_unseen(url: str) -> None:
    engine = make_engine(url, pool_size=1, ping_after_idle=0.0)
    try:
        pid = backend_pid(engine)
        terminate(url, pid)
        assert backend_pid(engine) != pid  # no error: the ping failed, a new connection served
    finally:
        engine.dispose()


def test_a_recently_used_connection_is_not_pinged_and_fails_once(url: str) -> None:
    engine = make_engine(url, pool_size=1, ping_after_idle=3600.0)
    try:
        pid = backend_pid(engine)
        terminate(url, pid)
        with pytest.raises(exc.OperationalError) as raised:
            backend_pid(engine)
        assert raised.value.connection_invalidated  # the pool drops it ...
        assert backend_pid(engine) != pid  # ... and the next checkout gets a new one
    finally:
        engine.dispose()


def test_only_connections_idle_long_enough_are_pinged(url: str) -> None:
    busy = make_engine(url, pool_size=1, ping_after_idle=3600.0)
    idle = make_engine(url, pool_size=1, ping_after_idle=0.0)
    try:
        busy_pings, idle_pings = counting_pings(busy), counting_pings(idle)
        for _ in range(3):
            backend_pid(busy)
            backend_pid(idle)
        assert busy_pings == []
        assert len(idle_pings) == 2  # not the first checkout: a new connection needs none
    finally:
        busy.dispose()
        idle.dispose()
