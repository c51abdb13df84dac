import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devsinks.sms_app import SmsApp, bearer_token
from devsinks.sms_store import SmsStore

VALID = json.dumps({"to": "+15551234567", "body": "hi"}).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SmsStore]:
    store = SmsStore(tmp_path)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_any_token_is_accepted_without_configuration(store: SmsStore) -> None:
    app = SmsApp(store)
    assert app.post_message(VALID, "k1", None).status == 201
    assert app.post_message(VALID, "k2", "Bearer whatever").status == 201
    assert app.post_message(VALID, "k3", "Basic Zm9vOmJhcg==").status == 201


def test_configured_token_is_enforced(store: SmsStore) -> None:
    app = SmsApp(store, token="s3cret")
    for header in (None, "Bearer wrong", "Basic s3cret"):
        response = app.post_message(VALID, "k1", header)
        assert response.status == 401
        assert response.headers == {"WWW-Authenticate": "Bearer"}
    assert len(store) == 0
    assert app.post_message(VALID, "k1", "Bearer s3cret").status == 201


def test_unauthorized_requests_do_not_consume_faults(store: SmsStore) -> None:
    app = SmsApp(store, token="s3cret")
    app.set_faults(b'{"status": 500, "count": 1}')
    assert app.post_message(VALID, "k1", None).status == 401
    assert app.post_message(VALID, "k1", "Bearer s3cret").status == 500
    assert app.post_message(VALID, "k1", "Bearer s3cret").status == 201


def test_status_fault_applies_before_validation(store: SmsStore) -> None:
    app = SmsApp(store)
    app.set_faults(b'{"status": 503, "count": 1}')
    response = app.post_message(b"garbage", None, None)
    assert response.status == 503
    assert response.payload == {"error": "injected_fault", "status": 503}
    assert app.post_message(b"garbage", None, None).status == 400


def test_repeat_returns_200_with_same_id(store: SmsStore) -> None:
    app = SmsApp(store)
    first = app.post_message(VALID, "k1", None)
    second = app.post_message(VALID, "k1", None)
    assert (first.status, second.status) == (201, 200)
    assert first.payload == second.payload
    assert first.payload["status"] == "accepted"


def test_invalid_fault_payload(store: SmsStore) -> None:
    app = SmsApp(store)
    response = app.set_faults(b'{"status": 500, "count": -1}')
    assert response.status == 400
    assert response.payload["field"] == "count"
    assert app.set_faults(b"nope").status == 400


def test_storage_failure_answers_500(store: SmsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_accept(request: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "accept", failing_accept)
    response = SmsApp(store).post_message(VALID, "k1", None)
    assert response.status == 500
    assert response.payload["error"] == "storage_error"
