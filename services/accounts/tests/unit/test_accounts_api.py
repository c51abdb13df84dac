import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from accounts import actions, api
from accounts.models import Plan, SubscriptionStatus
from signup_shared.testing import FakeSession

USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
SUB_ID = uuid.UUID("00000000-0000-0000-0000-000000000002")
VALID = {"email": "ada@example.com", "full_name": "Ada Lovelace", "plan": "pro"}


class Calls:
    def __init__(self) -> None:
        self.signups: list[tuple[actions.NewSignup, str]] = []
        self.sessions: list[FakeSession] = []
        self.ready = True


@pytest.fixture(scope="module")
def state() -> Calls:
    return Calls()


@pytest.fixture(scope="module")
def client(state: Calls) -> Iterator[TestClient]:
    def sessions() -> FakeSession:
        session = FakeSession()
        state.sessions.append(session)
        return session

    app = api.create_app(sessions, {"database": lambda: state.ready}, max_body_bytes=1024)  # type: ignore[arg-type]
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fake_actions(monkeypatch: pytest.MonkeyPatch, state: Calls) -> None:
    state.signups.clear()
    state.sessions.clear()
    state.ready = True

    def sign_up(_session: Any, signup: actions.NewSignup, *, correlation_id: str) -> Any:
        if signup.email == "taken@example.com":
            raise actions.EmailAlreadyRegisteredError
        if signup.email == "down@example.com":
            raise OperationalError("INSERT", {}, ConnectionRefusedError())
        state.signups.append((signup, correlation_id))
        return actions.SignupReceipt(USER_ID, SUB_ID, SubscriptionStatus.PENDING)

    def get_user(_session: Any, user_id: uuid.UUID) -> actions.UserProfile:
        if user_id != USER_ID:
            raise actions.UserNotFoundError(str(user_id))
        return actions.UserProfile(
            USER_ID,
            "ada@example.com",
            "Ada",
            None,
            Plan.PRO,
            SUB_ID,
            SubscriptionStatus.ACTIVE,
            datetime(2026, 1, 1, tzinfo=UTC),
        )

    monkeypatch.setattr(actions, "sign_up", sign_up)
    monkeypatch.setattr(actions, "get_user", get_user)


def test_signup_returns_201_and_commits(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json=VALID, headers={"X-Correlation-ID": "corr-9"})
    assert response.status_code == 201
    assert response.json() == {
        "user_id": str(USER_ID),
        "subscription_id": str(SUB_ID),
        "status": "pending",
    }
    [(signup, correlation_id)] = state.signups
    assert (signup.email, signup.plan, signup.phone) == ("ada@example.com", Plan.PRO, None)
    assert correlation_id == "corr-9"
    assert response.headers["X-Correlation-ID"] == "corr-9"
    assert state.sessions[0].commits == 1


def test_signup_without_correlation_header_gets_one(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json=VALID)
    assert response.headers["X-Correlation-ID"] == state.signups[0][1]


def test_full_name_is_trimmed(client: TestClient, state: Calls) -> None:
    client.post("/signups", json={**VALID, "full_name": "  Ada  "})
    assert state.signups[0][0].full_name == "Ada"


def test_duplicate_email_is_409_and_rolled_back(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "email": "taken@example.com"})
    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "email", "message": "already registered"}]
    assert (state.sessions[0].commits, state.sessions[0].rollbacks) == (0, 1)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"email": "nope"}, "email"),
        ({"plan": "gold"}, "plan"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"phone": "0612345678"}, "phone"),
        ({"phone": 14155550123}, "phone"),
        ({"full_name": 12}, "full_name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient, state: Calls, change: dict[str, Any], field: str
) -> None:
    response = client.post("/signups", json={**VALID, **change})
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert state.signups == []


def test_missing_field_is_named(client: TestClient) -> None:
    response = client.post("/signups", json={"email": "ada@example.com", "plan": "pro"})
    assert response.json()["errors"] == [{"field": "full_name", "message": "Field required"}]


def test_non_json_body_is_400(client: TestClient) -> None:
    response = client.post(
        "/signups", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


def test_oversized_body_is_413(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "full_name": "x" * 2000})
    assert response.status_code == 413
    assert state.signups == []


def test_get_user(client: TestClient, state: Calls) -> None:
    response = client.get(f"/users/{USER_ID}")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert state.sessions[0].commits == 0


def test_unknown_user_is_404(client: TestClient) -> None:
    assert client.get(f"/users/{uuid.uuid4()}").status_code == 404


def test_user_id_that_is_not_a_uuid_is_422(client: TestClient) -> None:
    response = client.get("/users/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "user_id"


def test_alive_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}


def test_not_ready_without_database(client: TestClient, state: Calls) -> None:
    state.ready = False
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable"}


def test_database_outage_is_503_with_retry_after(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "email": "down@example.com"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert state.sessions[0].rollbacks == 1
