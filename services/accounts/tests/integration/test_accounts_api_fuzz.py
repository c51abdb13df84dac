"""Property-based fuzz of the accounts HTTP API from its own OpenAPI schema (schemathesis).

The app runs in process against the scratch database of this test session; every request's
commit only releases a savepoint of one outer transaction that is rolled back at the end, so
nothing is left behind.
"""

from collections.abc import Iterator
from typing import Any

import email_validator
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from accounts import api, keys

pytestmark = pytest.mark.integration


class Database:
    """The connection the app's sessions join; bound by the fixture before any request."""

    connection: Connection | None = None

    def session(self) -> Session:
        assert self.connection is not None, "the rolled_back_database fixture binds it"
        return Session(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )


DATABASE = Database()
APP = api.create_app(DATABASE.session, {"database": lambda: True})  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def rolled_back_database(engine: Engine) -> Iterator[str]:
    """Binds the app to one rolled-back transaction; yields an API key with every scope."""
    with engine.connect() as connection:
        outer = connection.begin()
        DATABASE.connection = connection
        try:
            with DATABASE.session() as session:
                scopes = [scope.value for scope in keys.Scope]
                issued = keys.create_key(session, "fuzz", scopes, valid_days=1)
                session.commit()
            yield issued.token
        finally:
            DATABASE.connection = None
            outer.rollback()


def special_use_email(case: Case) -> bool:
    """``format: email`` cannot say that addresses at special-use names (.test) are refused."""
    email = case.body.get("email") if isinstance(case.body, dict) else None
    if not isinstance(email, str):
        return False
    domain = email.rpartition("@")[2].lower().rstrip(".")
    return any(
        domain == name or domain.endswith(f".{name}")
        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
    )


def call_and_validate(
    case: Case, excluded: list[Any], headers: dict[str, str] | None = None
) -> None:
    """``case.call_and_validate``, with 413 counted as a rejection of invalid data.

    A body made invalid by too many items can also be larger than the body limit; the
    documented 413 then refuses it before validation does (ST201 expects 4xx codes without it).
    """
    response = case.call(headers=headers)
    try:
        case.validate_response(response, excluded_checks=excluded, headers=headers)
    except FailureGroup as group:
        refused_as_too_large = response.status_code == 413 and all(
            failure.code == "ST201" for failure in group.exceptions
        )
        if not refused_as_too_large:
            raise


@schema.parametrize()
@settings(
    max_examples=40,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_no_server_errors_and_every_answer_matches_the_schema(
    case: Case, rolled_back_database: str
) -> None:
    """Without credentials: the internal operations answer 401, as documented."""
    excluded: list[Any] = [positive_data_acceptance] if special_use_email(case) else []
    if case.operation.path.startswith("/users/"):
        excluded.append(positive_data_acceptance)  # valid data, refused: no credentials
    call_and_validate(case, excluded)


@schema.parametrize()
@settings(
    max_examples=40,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_with_credentials_no_server_errors_and_every_answer_matches_the_schema(
    case: Case, rolled_back_database: str
) -> None:
    """With a key of every scope: reading and erasing random (unknown) users, 404 or 422."""
    excluded: list[Any] = [positive_data_acceptance] if special_use_email(case) else []
    if case.operation.path.startswith("/users/"):
        excluded.append(positive_data_acceptance)  # a random user id is unknown: 404
    headers = {"Authorization": f"Bearer {rolled_back_database}"}
    call_and_validate(case, excluded, headers)
