"""POST /keys/lookup against the real PostgreSQL: who may read users' data keys, and that an
erased user's key is gone (their sealed events become unreadable)."""

import base64
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounts import api, erasure, keys
from accounts.models import OutboxMessage, UserKey
from signup_contracts import is_redacted, parse_envelope, unseal_envelope

pytestmark = pytest.mark.integration
LOOKUP = "/keys/lookup"


@pytest.fixture
def client_session(engine: Engine) -> Iterator[tuple[TestClient, Session, dict[str, str]]]:
    """A client whose requests commit into savepoints of one transaction rolled back after."""
    with engine.connect() as connection:
        outer = connection.begin()

        def sessions() -> Session:
            return Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        session = sessions()
        tokens = {
            "reader": keys.create_key(session, "audit", ["keys:read"], 30).token,
            "users": keys.create_key(session, "crm", ["users:read", "users:erase"], 30).token,
        }
        session.commit()
        app = api.create_app(sessions, {"database": lambda: True})  # type: ignore[arg-type]
        try:
            with TestClient(app) as client:
                yield client, session, tokens
        finally:
            outer.rollback()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_up(client: TestClient, email: str) -> str:
    body = {"email": email, "full_name": "Grace Hopper", "plan": "team", "phone": "+14155550123"}
    answer = client.post("/signups", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["user_id"])


def test_refusals_no_key_wrong_scope_malformed_and_bad_bodies(
    client_session: tuple[TestClient, Session, dict[str, str]],
) -> None:
    client, _, tokens = client_session
    body = {"user_ids": [str(uuid.uuid4())]}
    missing = client.post(LOOKUP, json=body)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post(LOOKUP, json=body, headers=bearer("sk_nope")).status_code == 401
    forbidden = client.post(LOOKUP, json=body, headers=bearer(tokens["users"]))
    assert forbidden.status_code == 403
    assert "insufficient_scope" in forbidden.headers["WWW-Authenticate"]
    reader = bearer(tokens["reader"])
    assert client.post(LOOKUP, json={"user_ids": []}, headers=reader).status_code == 422
    too_many = {"user_ids": [str(uuid.uuid4()) for _ in range(301)]}
    assert client.post(LOOKUP, json=too_many, headers=reader).status_code in (413, 422)
    wrong = client.post(LOOKUP, json={"user_ids": ["not-a-uuid"]}, headers=reader)
    assert wrong.status_code == 422 and "user_ids" in wrong.text


def test_the_keys_of_existing_users_open_their_sealed_copies_and_an_erased_one_is_absent(
    client_session: tuple[TestClient, Session, dict[str, str]],
) -> None:
    client, session, tokens = client_session
    kept, erased = sign_up(client, "kept@example.com"), sign_up(client, "gone@example.com")
    unknown = str(uuid.uuid4())
    reader = bearer(tokens["reader"])
    answer = client.post(LOOKUP, json={"user_ids": [kept, erased, unknown]}, headers=reader)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert set(answer.json()["keys"]) == {kept, erased}
    key = base64.urlsafe_b64decode(answer.json()["keys"][kept] + "=")
    stored = session.get(UserKey, uuid.UUID(kept))
    assert stored is not None and stored.key == key
    sealed = [
        parse_envelope(row.payload)
        for row in session.query(OutboxMessage).filter(OutboxMessage.version == 3)
    ]
    mine = next(e for e in sealed if str(e.data.user_id) == kept)
    assert str(unseal_envelope(mine, key).data.email) == "kept@example.com"

    assert client.delete(f"/users/{erased}", headers=bearer(tokens["users"])).status_code == 202
    after = client.post(LOOKUP, json={"user_ids": [kept, erased]}, headers=reader)
    assert set(after.json()["keys"]) == {kept}
    assert erasure.data_keys(session, [uuid.UUID(erased)]) == {}
    theirs = next(e for e in sealed if str(e.data.user_id) == erased)
    assert is_redacted(unseal_envelope(theirs, None).data)
