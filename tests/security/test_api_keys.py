"""The internal user API refuses every credential it should, against the real accounts database:
no key, a key without the scope, an expired key, a revoked key, another client's key id, a
tampered secret. Keys are stored hashed."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import accounts
from accounts import api, keys
from signup_shared.testing import migrated_database

pytestmark = pytest.mark.integration
MIGRATIONS = Path(accounts.__file__).parent / "migrations"


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with migrated_database("accounts", MIGRATIONS) as migrated:
        yield migrated


@pytest.fixture(scope="module")
def setup(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    sessions = sessionmaker(engine)
    tokens: dict[str, str] = {}
    with sessions() as session, session.begin():
        for name, client, scopes in (
            ("reader", "crm", ["users:read"]),
            ("eraser", "privacy", ["users:erase", "users:read"]),
            ("expired", "erp", ["users:read"]),
            ("revoked", "bi", ["users:read"]),
        ):
            tokens[name] = keys.create_key(session, client, scopes, valid_days=30).token
        session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE client='erp'")
        )
        keys.revoke_key(session, tokens["revoked"].split("_")[2])
    with TestClient(api.create_app(sessions, {}), raise_server_exceptions=False) as client:
        response = client.post(
            "/signups", json={"email": "ada@example.com", "full_name": "Ada L", "plan": "pro"}
        )
        yield client, tokens, response.json()["user_id"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def swap_client(token: str, client: str) -> str:
    _, _, key_id, secret = token.split("_")
    return f"sk_{client}_{key_id}_{secret}"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_refusals(setup: tuple[TestClient, dict[str, str], str], method: str) -> None:
    client, tokens, user_id = setup
    path = f"/users/{user_id}"
    cases = {
        "no key": ({}, 401),
        "expired": (bearer(tokens["expired"]), 401),
        "revoked": (bearer(tokens["revoked"]), 401),
        "another client's key id": (bearer(swap_client(tokens["eraser"], "crm")), 401),
        "tampered secret": (bearer(tokens["eraser"][:-4] + "0000"), 401),
    }
    if method == "DELETE":
        cases["without the scope"] = (bearer(tokens["reader"]), 403)
    for case, (headers, expected) in cases.items():
        response = client.request(method, path, headers=headers)
        assert response.status_code == expected, case
        assert response.json()["detail"], case
    assert client.get(path, headers=bearer(tokens["reader"])).status_code == 200


def test_erasure_with_the_scope_then_410(setup: tuple[TestClient, dict[str, str], str]) -> None:
    client, tokens, user_id = setup
    assert (
        client.delete(f"/users/{uuid.uuid4()}", headers=bearer(tokens["eraser"])).status_code == 404
    )
    assert client.delete(f"/users/{user_id}", headers=bearer(tokens["eraser"])).status_code == 202
    gone = client.get(f"/users/{user_id}", headers=bearer(tokens["reader"]))
    assert gone.status_code == 410 and gone.json()["erasure"]["status"] == "pending"


def test_no_secret_is_stored(engine: Engine, setup: tuple[TestClient, dict[str, str], str]) -> None:
    _, tokens, _ = setup
    with Session(engine) as session:
        stored = " ".join(str(r) for r in session.execute(text("SELECT * FROM api_keys")))
    assert all(token.split("_")[-1] not in stored for token in tokens.values())
