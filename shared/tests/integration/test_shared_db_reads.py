"""Read sessions (``make_read_session_factory``): statements outside any transaction, and the
pooled connection given back as it was."""

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event, text

from signup_shared.db import make_engine, make_read_session_factory, make_session_factory
from signup_shared.testing import scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture
def engine() -> Iterator[Engine]:
    with scratch_database("reads") as scratch:
        engine = make_engine(scratch.url.render_as_string(hide_password=False), pool_size=1)
        try:
            yield engine
        finally:
            engine.dispose()


def driver(session: Any) -> Any:
    return session.connection().connection.driver_connection


def test_a_read_runs_outside_a_transaction_and_sends_no_begin_or_rollback(engine: Engine) -> None:
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    reads = make_read_session_factory(engine)
    with reads() as session:
        assert session.execute(text("SELECT 41 + 1")).scalar_one() == 42
        status = driver(session).info.transaction_status
        session.rollback()  # what ``transaction(persist=False)`` does: nothing to roll back
    assert status == TransactionStatus.IDLE  # no BEGIN was sent before the SELECT
    assert sent == ["SELECT 41 + 1"]


def test_the_pooled_connection_comes_back_in_transactions_after_a_read(engine: Engine) -> None:
    reads, sessions = make_read_session_factory(engine), make_session_factory(engine)
    with reads() as session:
        read_connection = driver(session)
        assert read_connection.autocommit
    with sessions() as session:
        session.execute(text("SELECT 1"))
        assert driver(session) is read_connection  # the pool's one connection
        assert not read_connection.autocommit
        assert read_connection.info.transaction_status == TransactionStatus.INTRANS
        session.rollback()
