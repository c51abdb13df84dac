"""``signup-dlq drop-erased`` against the real accounts API (its app in process, a migrated
scratch database, real API keys) and the real broker: the dead letters of the user accounts
erased go, the others stay; a key without ``users:read`` stops the command and drops nothing.

The tool's own tests use a fake accounts endpoint; this one proves the answers it relies on
(410 with the erasure, 200, the key refusals) are accounts' own.
"""

import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from functools import partial
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request

import pika
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

import accounts
from accounts import api, keys
from signup_dlq import erased_command
from signup_dlq.accounts import AccountsClient
from signup_dlq.cli import main as signup_dlq
from signup_shared.testing import migrated_database

pytestmark = pytest.mark.integration
MIGRATIONS = Path(accounts.__file__).parent / "migrations"
ADMIN_AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with migrated_database("accounts", MIGRATIONS) as migrated:
        yield migrated


@pytest.fixture(scope="module")
def platform(engine: Engine) -> Iterator[dict[str, Any]]:
    """Two users (one erased), the tool's key (users:read) and a key without that scope."""
    sessions = sessionmaker(engine)
    with sessions() as session, session.begin():
        reader = keys.create_key(session, "signup-dlq", ["users:read"], valid_days=1).token
        eraser = keys.create_key(session, "privacy", ["users:erase"], valid_days=1).token
        other = keys.create_key(session, "history", ["keys:read"], valid_days=1).token
    with TestClient(api.create_app(sessions, {}), raise_server_exceptions=False) as client:
        users = {}
        for name in ("ada", "bob"):
            signup = {"email": f"{name}@example.com", "full_name": name.title(), "plan": "pro"}
            response = client.post("/signups", json=signup)
            assert response.status_code in (200, 201, 202), response.text
            users[name] = uuid.UUID(response.json()["user_id"])
        erased = client.delete(
            f"/users/{users['ada']}", headers={"Authorization": f"Bearer {eraser}"}
        )
        assert erased.status_code == 202, erased.text
        yield {"client": client, "users": users, "reader": reader, "other": other}


def through(client: TestClient) -> Callable[..., Any]:
    """A ``urlopen`` that hands the request to the app in process (no socket)."""

    def open_(request: Request, timeout: float) -> Any:
        assert timeout > 0
        response = client.get(urlsplit(request.full_url).path, headers=dict(request.header_items()))
        if response.status_code >= 400:
            raise HTTPError(
                request.full_url,
                response.status_code,
                response.reason_phrase,
                Message(),
                io.BytesIO(response.content),
            )
        return io.BytesIO(response.content)

    return open_


@pytest.fixture
def dlq(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    name = f"dropcheck-{uuid.uuid4().hex[:12]}.user_signed_up.dlq"
    connection = pika.BlockingConnection(pika.URLParameters(ADMIN_AMQP_URL))
    channel = connection.channel()
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    monkeypatch.setenv("SIGNUP_DLQ_AMQP_URL", ADMIN_AMQP_URL)
    try:
        yield name, channel
    finally:
        channel.queue_delete(name)
        connection.close()


def seed(channel: Any, queue: str, users: dict[str, uuid.UUID]) -> list[str]:
    messages = [
        ("ada-signup", "UserSignedUp", 2, "ada"),
        ("bob-signup", "UserSignedUp", 2, "bob"),
        ("ada-erasure", "UserErasureRequested", 1, "ada"),
    ]
    for message_id, event_type, version, user in messages:
        data = {"user_id": str(users[user]), "email": f"{user}@example.com", "full_name": user}
        body = {"id": str(uuid.uuid4()), "type": event_type, "version": version, "data": data}
        channel.basic_publish(
            "",
            queue,
            json.dumps(body).encode(),
            pika.BasicProperties(
                message_id=message_id,
                delivery_mode=2,
                headers={"x-signup-failure-kind": "permanent", "x-signup-service": "stats"},
            ),
        )
    return [message_id for message_id, *_ in messages]


def drain(channel: Any, queue: str) -> list[tuple[str, dict[str, Any]]]:
    taken = []
    while True:
        method, properties, _body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((properties.message_id, dict(properties.headers or {})))


def test_the_erased_users_dead_letters_go_and_the_others_stay(
    platform: dict[str, Any],
    dlq: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue, channel = dlq
    seed(channel, queue, platform["users"])
    opener = through(platform["client"])
    monkeypatch.setattr(erased_command, "AccountsClient", partial(AccountsClient, opener=opener))
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", platform["reader"])
    assert signup_dlq(["drop-erased", queue, "--yes", "--accounts-url", "http://accounts"]) == 0
    out = capsys.readouterr().out
    assert f"dropped 1 dead letter(s) of erased users from {queue}, kept 2" in out
    assert [
        (message_id, headers["x-signup-failure-kind"])
        for message_id, headers in drain(channel, queue)
    ] == [("bob-signup", "permanent"), ("ada-erasure", "permanent")]


def test_a_key_without_users_read_stops_and_drops_nothing(
    platform: dict[str, Any],
    dlq: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue, channel = dlq
    seeded = seed(channel, queue, platform["users"])
    opener = through(platform["client"])
    monkeypatch.setattr(erased_command, "AccountsClient", partial(AccountsClient, opener=opener))
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", platform["other"])
    assert signup_dlq(["drop-erased", queue, "--yes", "--accounts-url", "http://accounts"]) == 1
    err = capsys.readouterr().err
    assert "refused the API key (403: this API key lacks the scope users:read)" in err
    assert platform["other"] not in err
    assert sorted(message_id for message_id, _ in drain(channel, queue)) == sorted(seeded)
