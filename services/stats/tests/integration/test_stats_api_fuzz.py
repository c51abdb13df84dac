"""Property-based fuzz of the stats HTTP API from its own OpenAPI schema (schemathesis).

In process, against the scratch database of this test session, inside one transaction that is
rolled back at the end.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from stats import api

pytestmark = pytest.mark.integration


class Database:
    """The connection the app's sessions join; bound by the fixture before any request."""

    connection: Connection | None = None

    def session(self) -> Session:
        assert self.connection is not None, "the rolled_back_database fixture binds it"
        return Session(bind=self.connection, join_transaction_mode="create_savepoint")


DATABASE = Database()
APP = api.create_app(DATABASE.session, {"database": lambda: True})  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def rolled_back_database(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection:
        outer = connection.begin()
        DATABASE.connection = connection
        try:
            yield
        finally:
            DATABASE.connection = None
            outer.rollback()


@schema.parametrize()
@settings(
    max_examples=25,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_no_server_errors_and_every_answer_matches_the_schema(
    case: Case, rolled_back_database: None
) -> None:
    case.call_and_validate()
