"""The HTTP API and the sign-up action against the real PostgreSQL: what it refuses is a 4xx."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from accounts import actions, api
from accounts.actions import NewSignup
from accounts.models import OutboxMessage, Plan

pytestmark = pytest.mark.integration
VALID = {"email": "grace@example.com", "full_name": "Grace Hopper", "plan": "team"}


@pytest.fixture
def connection_session(engine: Engine) -> Iterator[tuple[TestClient, Session]]:
    """A client whose requests commit into savepoints of one transaction rolled back after."""
    with engine.connect() as connection:
        outer = connection.begin()

        def sessions() -> Session:
            return Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        app = api.create_app(sessions, {"database": lambda: True})  # type: ignore[arg-type]
        try:
            with TestClient(app) as client:
                yield client, sessions()
        finally:
            outer.rollback()


def test_a_nul_character_refused_by_postgresql_names_the_field(session: Session) -> None:
    signup = NewSignup(email="nul@example.com", full_name="Ada\x00Lovelace", plan=Plan.FREE)
    with pytest.raises(actions.SignupRejectedError) as refused:
        actions.sign_up(session, signup, correlation_id="c")
    assert refused.value.field == "full_name"


def test_the_second_signup_with_an_email_is_409_naming_email(
    connection_session: tuple[TestClient, Session],
) -> None:
    client, _ = connection_session
    assert client.post("/signups", json=VALID).status_code == 201
    response = client.post("/signups", json={**VALID, "email": "GRACE@example.com"})
    assert response.status_code == 409
    assert [error["field"] for error in response.json()["errors"]] == ["email"]


def test_a_correlation_id_longer_than_its_column_is_replaced_and_stored(
    connection_session: tuple[TestClient, Session],
) -> None:
    client, session = connection_session
    response = client.post("/signups", json=VALID, headers={"X-Correlation-ID": "c" * 500})
    assert response.status_code == 201
    used = response.headers["X-Correlation-ID"]
    assert used != "c" * 500
    assert set(session.scalars(select(OutboxMessage.correlation_id)).all()) == {used}


@pytest.mark.parametrize(
    "change",
    [{"full_name": "Ada\x00"}, {"full_name": "x" * 201}, {"phone": "+" + "1" * 16}],
)
def test_values_the_columns_cannot_hold_are_422_not_500(
    connection_session: tuple[TestClient, Session], change: dict[str, str]
) -> None:
    client, _ = connection_session
    response = client.post("/signups", json={**VALID, **change})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == list(change)
