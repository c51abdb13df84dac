"""The internal API's refusals and the erasure endpoints, with the stores replaced by fakes.

The real ``keys.authenticate`` runs (only the key lookup is faked), so these prove the answers
a caller gets: 401 without, with a malformed, unknown, forged, expired or revoked key; 403 with
a valid key without the scope; never a 500, and never the key in a log line.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from accounts import actions, api, erasure, erasure_models, keys
from accounts.erasure import ErasureState
from accounts.erasure_models import ApiKey

USER_ID = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
SECRET = "ab" * 32
NOW = datetime.now(UTC)


def key(key_id: str, client: str, scopes: list[str], **dates: Any) -> ApiKey:
    return ApiKey(
        id=key_id,
        client=client,
        secret_sha256=keys.digest(SECRET),
        scopes=scopes,
        created_at=NOW - timedelta(days=2),
        **dates,
    )


KEYS = {
    "00000000000000a1": key("00000000000000a1", "crm", ["users:read"]),
    "00000000000000a2": key("00000000000000a2", "privacy", ["users:erase", "users:read"]),
    "00000000000000a3": key(
        "00000000000000a3", "crm", ["users:read"], expires_at=NOW - timedelta(seconds=1)
    ),
    "00000000000000a4": key(
        "00000000000000a4", "crm", ["users:read"], revoked_at=NOW - timedelta(hours=1)
    ),
}


def token(key_id: str, client: str | None = None, secret: str = SECRET) -> dict[str, str]:
    owner = client or KEYS[key_id].client
    return {"Authorization": f"Bearer sk_{owner}_{key_id}_{secret}"}


READER, ERASER = token("00000000000000a1"), token("00000000000000a2")


class Session:
    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


STATE = ErasureState(USER_ID, NOW, "privacy", None, ("accounts",), ("notifications", "stats"))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = api.create_app(Session, {})  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    erased: dict[uuid.UUID, ErasureState] = {}
    calls: dict[str, Any] = {"erase": []}
    monkeypatch.setattr(erasure_models, "key_by_id", lambda _s, key_id: KEYS.get(key_id))

    def request_erasure(_s: Any, user_id: uuid.UUID, by: str, **_kw: Any) -> Any:
        calls["erase"].append((user_id, by))
        if user_id != USER_ID:
            raise erasure.UnknownUserError(str(user_id))
        created = user_id not in erased
        erased[user_id] = STATE
        return STATE, created

    def get_user(_s: Any, user_id: uuid.UUID) -> actions.UserProfile:
        raise actions.UserNotFoundError(str(user_id))

    monkeypatch.setattr(erasure, "request_erasure", request_erasure)
    monkeypatch.setattr(erasure, "erasure_state", lambda _s, user_id, _h: erased.get(user_id))
    monkeypatch.setattr(actions, "get_user", get_user)
    return calls


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, keys.Refusal.MISSING),
        ({"Authorization": "Basic YWRhOnNlY3JldA=="}, keys.Refusal.MISSING),
        ({"Authorization": "Bearer not-a-key"}, keys.Refusal.MALFORMED),
        (token("00000000000000ff", "crm"), keys.Refusal.INVALID),  # unknown id
        (token("00000000000000a1", secret="cd" * 32), keys.Refusal.INVALID),  # wrong secret
        (token("00000000000000a2", "crm"), keys.Refusal.INVALID),  # another client's key id
        (token("00000000000000a3"), keys.Refusal.EXPIRED),
        (token("00000000000000a4"), keys.Refusal.REVOKED),
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_refused_credentials_are_401_with_a_clear_body(
    client: TestClient, headers: dict[str, str], detail: keys.Refusal, method: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        response = client.request(method, f"/users/{USER_ID}", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": detail.value, "errors": []}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    secret = headers.get("Authorization", "").rsplit("_", 1)[-1]
    assert not secret or all(secret not in str(line) for line in logs)


def test_a_key_without_the_scope_is_403(client: TestClient, fakes: dict[str, Any]) -> None:
    response = client.delete(f"/users/{USER_ID}", headers=READER)
    assert response.status_code == 403
    assert response.json()["detail"] == "this API key lacks the scope users:erase"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert fakes["erase"] == []


def test_erasing_is_202_then_200_and_reading_is_410(
    client: TestClient, fakes: dict[str, Any]
) -> None:
    unknown = client.get(f"/users/{USER_ID}", headers=READER)
    # `signup-dlq drop-erased` tells an unknown user from a wrong URL by this detail, and an
    # erased user by the 410's `erasure` object: both are part of the API.
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "user not found")
    first = client.delete(f"/users/{USER_ID}", headers=ERASER)
    assert first.status_code == 202
    assert first.json()["status"] == "pending"
    assert first.json()["waiting_for"] == ["notifications", "stats"]
    again = client.delete(f"/users/{USER_ID}", headers=ERASER)
    assert again.status_code == 200
    assert fakes["erase"] == [(USER_ID, "privacy"), (USER_ID, "privacy")]
    gone = client.get(f"/users/{USER_ID}", headers=READER)
    assert gone.status_code == 410
    assert gone.json()["erasure"]["confirmed"] == ["accounts"]


def test_erasing_an_unknown_user_is_404(client: TestClient) -> None:
    response = client.delete(f"/users/{uuid.uuid4()}", headers=ERASER)
    assert response.status_code == 404


def test_the_openapi_document_names_the_security_scheme(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    users = document["paths"]["/users/{user_id}"]
    assert users["get"]["security"] == [{"ApiKey": []}]
    assert users["delete"]["security"] == [{"ApiKey": []}]
    assert {"401", "403", "410"} <= set(users["get"]["responses"])
    assert "security" not in document["paths"]["/signups"]["post"]


def test_probes_and_signups_need_no_credentials(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
