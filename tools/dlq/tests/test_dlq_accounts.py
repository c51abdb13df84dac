"""Unit tests of the accounts API adapter: answers mapped to a user's status, errors that stop
the command, where the API key comes from (an in-memory opener: no network)."""

from __future__ import annotations

import io
import json
import uuid
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import pytest

from signup_dlq import accounts as accounts_module
from signup_dlq.accounts import AccountsClient, api_key_from_environment
from signup_dlq.erased import UserStatus
from signup_dlq.errors import AccountsApiError, UsageError

USER = uuid.UUID("5f0c2a4e-8d1b-4c3e-9a7f-0123456789ab")
KEY = "sk_signup-dlq_0123456789abcdef_" + "ab" * 32


class Answer:
    """What the fake opener answers: a status code and a JSON body (or an exception)."""

    def __init__(self, code: int, body: Any = None, raises: BaseException | None = None) -> None:
        self.code, self.body, self.raises = code, body, raises
        self.requests: list[Request] = []

    def __call__(self, request: Request, timeout: float) -> Any:
        self.requests.append(request)
        assert timeout > 0
        if self.raises is not None:
            raise self.raises
        payload = json.dumps(self.body).encode() if self.body is not None else b""
        if self.code >= 400:
            raise HTTPError(request.full_url, self.code, "Reason", Message(), io.BytesIO(payload))
        return io.BytesIO(payload)


def client(answer: Answer, url: str = "http://accounts-web:8000/") -> AccountsClient:
    return AccountsClient(url, KEY, opener=answer)


GONE = {"detail": "user erased", "erasure": {"user_id": str(USER), "status": "pending"}}


@pytest.mark.parametrize(
    ("code", "body", "status"),
    [
        (200, {"user_id": str(USER), "email": "ada@example.test"}, UserStatus.PRESENT),
        (410, GONE, UserStatus.ERASED),
        (404, {"detail": "user not found", "errors": []}, UserStatus.UNKNOWN),
    ],
)
def test_answers_map_to_a_status(code: int, body: Any, status: UserStatus) -> None:
    answer = Answer(code, body)
    assert client(answer).status(USER) is status
    [request] = answer.requests
    assert request.full_url == f"http://accounts-web:8000/users/{USER}"
    assert request.get_method() == "GET"
    assert request.get_header("Authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("code", "body", "says"),
    [
        (401, {"detail": "invalid credentials"}, "refused the API key (401: invalid credentials)"),
        (403, {"detail": "client x lacks the scope users:read"}, "refused the API key (403"),
        (503, {"detail": "database unavailable"}, "answered 503 Reason"),
        (500, None, "answered 500 Reason"),
        (404, {"detail": "Not Found"}, "is it accounts' internal API?"),
        (410, {"detail": "gone"}, "is it accounts' internal API?"),
        (422, {"detail": "bad id"}, "answered 422"),
    ],
)
def test_every_other_answer_stops_with_a_clear_error(code: int, body: Any, says: str) -> None:
    with pytest.raises(AccountsApiError, match="accounts at http://accounts-web:8000") as raised:
        client(Answer(code, body)).status(USER)
    assert says in str(raised.value)
    assert KEY not in str(raised.value) and "ab" * 32 not in str(raised.value)


def test_a_refused_key_says_which_scope_is_needed() -> None:
    with pytest.raises(AccountsApiError, match="scope users:read"):
        client(Answer(403, {"detail": "forbidden"})).status(USER)


@pytest.mark.parametrize(
    "error",
    [URLError(ConnectionRefusedError(111, "Connection refused")), TimeoutError("timed out")],
)
def test_no_answer_stops_with_a_clear_error(error: BaseException) -> None:
    with pytest.raises(AccountsApiError, match="cannot reach accounts at http://accounts-web:8000"):
        client(Answer(0, raises=error)).status(USER)


def test_a_password_in_the_url_is_never_shown() -> None:
    answer = Answer(0, raises=URLError("refused"))
    with pytest.raises(AccountsApiError) as raised:
        client(answer, "http://op:hunter2@accounts-web:8000").status(USER)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("url", ["ftp://accounts", "file:///etc/passwd", "http://", "accounts"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(UsageError, match="http:// or https://"):
        AccountsClient(url, KEY, opener=Answer(200))


# --- the API key: from the environment only -------------------------------------------------


def test_the_key_comes_from_the_environment() -> None:
    assert api_key_from_environment({"SIGNUP_DLQ_ACCOUNTS_API_KEY": f" {KEY}\n"}) == KEY


def test_else_from_the_file_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[Path] = []

    def read_text(path: Path, encoding: str) -> str:
        read.append(path)
        return f"{KEY}\n"

    monkeypatch.setattr(accounts_module.Path, "read_text", read_text)
    env = {"SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE": "/run/secrets/dlq.key"}
    assert api_key_from_environment(env) == KEY
    assert read == [Path("/run/secrets/dlq.key")]


def test_an_unreadable_key_file_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_text(path: Path, encoding: str) -> str:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(accounts_module.Path, "read_text", read_text)
    with pytest.raises(UsageError, match=r"KEY_FILE=/nope: No such file or directory"):
        api_key_from_environment({"SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE": "/nope"})


@pytest.mark.parametrize("env", [{}, {"SIGNUP_DLQ_ACCOUNTS_API_KEY": "  "}])
def test_no_key_is_a_usage_error_naming_both_variables(env: dict[str, str]) -> None:
    with pytest.raises(UsageError) as raised:
        api_key_from_environment(env)
    message = str(raised.value)
    assert "SIGNUP_DLQ_ACCOUNTS_API_KEY " in message
    assert "SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE" in message
    assert "--scope users:read" in message
