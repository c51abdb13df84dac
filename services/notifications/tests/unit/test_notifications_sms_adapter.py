import json
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest

from notifications.adapters.sms import (
    MAX_DETAIL,
    HttpSmsGateway,
    Sms,
    SmsRejectedError,
    SmsTransientError,
)
from notifications.testing import FakeSmsSender
from signup_shared.errors import PermanentError, TransientError

KEY = uuid.UUID("7d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a")
WELCOME = Sms(KEY, "+14155550123", "Welcome to Signup Platform, Ada!")


def gateway(respond: Callable[[httpx.Request], httpx.Response]) -> HttpSmsGateway:
    return HttpSmsGateway(
        "http://sms.local:8025", "tok-123", timeout=2.0, transport=httpx.MockTransport(respond)
    )


def answer(status: int, body: object = None, text: str | None = None) -> HttpSmsGateway:
    if text is not None:
        return gateway(lambda _request: httpx.Response(status, text=text))
    return gateway(lambda _request: httpx.Response(status, json=body))


def test_posts_the_message_with_bearer_token_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "sms_42", "status": "accepted"})

    assert gateway(respond).send(WELCOME) == "sms_42"
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "http://sms.local:8025/messages")
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Idempotency-Key"] == str(KEY)
    assert json.loads(request.content) == {
        "to": "+14155550123",
        "body": "Welcome to Signup Platform, Ada!",
    }


def test_a_repeated_key_answered_200_returns_the_same_id() -> None:
    assert answer(200, {"id": "sms_42", "status": "accepted"}).send(WELCOME) == "sms_42"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_transient(status: int) -> None:
    with pytest.raises(SmsTransientError, match=str(status)) as raised:
        answer(status, {"error": "injected_fault"}).send(WELCOME)
    assert isinstance(raised.value, TransientError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_permanent_with_status_and_text(status: int) -> None:
    with pytest.raises(SmsRejectedError) as raised:
        answer(status, {"error": "invalid_request", "field": "to"}).send(WELCOME)
    assert isinstance(raised.value, PermanentError)
    assert f"answered {status}" in str(raised.value)
    assert '"field":"to"' in str(raised.value)


def test_long_responses_are_truncated_and_phone_numbers_masked() -> None:
    with pytest.raises(SmsRejectedError) as raised:
        answer(400, text="bad number +14155550123 " + "x" * 1000).send(WELCOME)
    message = str(raised.value)
    assert "+14155550123" not in message and "+*********23" in message
    assert len(message) < MAX_DETAIL + 40


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(error: Exception) -> None:
    def fail(_request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(SmsTransientError, match="unreachable") as raised:
        gateway(fail).send(WELCOME)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("body", [{"status": "accepted"}, ["sms_1"]])
def test_an_accepted_answer_without_an_id_is_retried_not_trusted(body: object) -> None:
    with pytest.raises(SmsTransientError, match="no message id"):
        answer(201, body).send(WELCOME)


def test_one_client_serves_every_send() -> None:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": f"sms_{len(seen)}"})

    sms = gateway(respond)
    client = sms._client
    assert [sms.send(WELCOME), sms.send(WELCOME)] == ["sms_1", "sms_2"]
    assert sms._client is client
    sms.close()
    assert client.is_closed


def test_connection_limits_match_the_sending_threads() -> None:
    sms = HttpSmsGateway("http://sms.local:8025", "tok", max_connections=3, keepalive_expiry=9.0)
    assert (sms.limits.max_connections, sms.limits.max_keepalive_connections) == (3, 3)
    assert sms.limits.keepalive_expiry == 9.0
    sms.close()


def test_threads_share_one_client_and_each_sms_keeps_its_idempotency_key() -> None:
    keys: list[str] = []
    lock = threading.Lock()

    def respond(request: httpx.Request) -> httpx.Response:
        with lock:
            keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"id": f"sms_{request.headers['Idempotency-Key']}"})

    sms = gateway(respond)
    messages = [Sms(uuid.UUID(int=n), "+14155550123", "Hi") for n in range(24)]
    answers: dict[uuid.UUID, str] = {}

    def send(batch: list[Sms]) -> None:
        for message in batch:
            answers[message.idempotency_key] = sms.send(message)

    threads = [threading.Thread(target=send, args=(messages[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(keys) == sorted(str(m.idempotency_key) for m in messages)
    assert all(answers[key] == f"sms_{key}" for key in answers) and len(answers) == 24


def test_the_fake_records_sends_and_raises_queued_failures() -> None:
    fake = FakeSmsSender(SmsRejectedError("400"))
    with pytest.raises(SmsRejectedError):
        fake.send(WELCOME)
    assert fake.send(WELCOME) == f"fake-sms-{KEY}"
    assert fake.sent == [WELCOME]
    fake.close()
    assert fake.closed
