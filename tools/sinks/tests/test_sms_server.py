import threading
from pathlib import Path

import httpx
import pytest

from devsinks.reading import read_sms
from devsinks.sms_http import SmsSink

pytestmark = pytest.mark.integration  # real servers on loopback, real processes

TO = "+15551234567"


def send(
    client: httpx.Client, key: str | None = "key-1", to: str = TO, body: str = "Your code is 1234"
) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/messages", json={"to": to, "body": body}, headers=headers)


def test_healthz(sms_client: httpx.Client) -> None:
    response = sms_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_message_is_stored(sms_client: httpx.Client, sms_dir: Path) -> None:
    response = send(sms_client)
    assert response.status_code == 201
    payload = response.json()
    assert payload["status"] == "accepted"
    [stored] = read_sms(sms_dir)
    assert stored["id"] == payload["id"]
    assert stored["to"] == TO
    assert stored["body"] == "Your code is 1234"
    assert stored["idempotency_key"] == "key-1"
    assert isinstance(stored["received_at"], str)


def test_repeated_key_is_stored_once_even_across_restart(sms_dir: Path) -> None:
    with SmsSink(sms_dir, port=0) as sink, httpx.Client(base_url=sink.url) as client:
        first = send(client)
        second = send(client)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]

    with SmsSink(sms_dir, port=0) as sink, httpx.Client(base_url=sink.url) as client:
        after_restart = send(client)
        other = send(client, key="key-2")
    assert after_restart.status_code == 200
    assert after_restart.json()["id"] == first.json()["id"]
    assert other.status_code == 201
    assert [line["idempotency_key"] for line in read_sms(sms_dir)] == ["key-1", "key-2"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "hi"}, "to"),
        ({"to": "5551234567", "body": "hi"}, "to"),
        ({"to": TO}, "body"),
        ({"to": TO, "body": ""}, "body"),
    ],
)
def test_invalid_fields_are_named(
    sms_client: httpx.Client, sms_dir: Path, payload: dict[str, str], field: str
) -> None:
    response = sms_client.post("/messages", json=payload, headers={"Idempotency-Key": "k"})
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert read_sms(sms_dir) == []


def test_invalid_json_and_missing_key_are_rejected(sms_client: httpx.Client) -> None:
    garbage = sms_client.post("/messages", content=b"{", headers={"Idempotency-Key": "k"})
    assert garbage.status_code == 400
    assert garbage.json()["error"] == "invalid_request"
    missing_key = send(sms_client, key=None)
    assert missing_key.status_code == 400
    assert missing_key.json()["field"] == "Idempotency-Key"


def test_status_fault_for_n_requests_then_recovery(sms_client: httpx.Client, sms_dir: Path) -> None:
    armed = sms_client.post("/_control/faults", json={"status": 500, "count": 2})
    assert armed.status_code == 200
    assert armed.json()["count"] == 2
    statuses = [send(sms_client).status_code for _ in range(3)]
    assert statuses == [500, 500, 201]
    assert len(read_sms(sms_dir)) == 1
    assert sms_client.get("/_control/faults").json()["status"] is None


def test_status_fault_until_cleared(sms_client: httpx.Client, sms_dir: Path) -> None:
    sms_client.post("/_control/faults", json={"status": 503, "count": None})
    assert [send(sms_client).status_code for _ in range(3)] == [503, 503, 503]
    cleared = sms_client.delete("/_control/faults")
    assert cleared.json() == {"status": None, "count": None, "fail_recipients": {}}
    assert send(sms_client).status_code == 201
    assert len(read_sms(sms_dir)) == 1


def test_fail_recipients(sms_client: httpx.Client, sms_dir: Path) -> None:
    failing = "+15550001"
    response = sms_client.post("/_control/faults", json={"fail_recipients": {failing: 400}})
    assert response.json()["fail_recipients"] == {failing: 400}
    for attempt in range(3):
        rejected = send(sms_client, key=f"fail-{attempt}", to=failing)
        assert rejected.status_code == 400
        assert rejected.json()["error"] == "injected_fault"
    assert send(sms_client, key="ok", to=TO).status_code == 201
    assert [line["to"] for line in read_sms(sms_dir)] == [TO]
    sms_client.delete("/_control/faults")
    assert send(sms_client, key="fail-0", to=failing).status_code == 201


def test_invalid_fault_configuration_names_the_field(sms_client: httpx.Client) -> None:
    response = sms_client.post("/_control/faults", json={"status": 500, "count": 0})
    assert response.status_code == 400
    assert response.json()["field"] == "count"


def test_configured_token(sms_dir: Path) -> None:
    with SmsSink(sms_dir, port=0, token="s3cret") as sink, httpx.Client(base_url=sink.url) as c:
        unauthorized = send(c)
        authorized = c.post(
            "/messages",
            json={"to": TO, "body": "hi"},
            headers={"Idempotency-Key": "k", "Authorization": "Bearer s3cret"},
        )
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"] == "Bearer"
    assert authorized.status_code == 201


def test_unknown_routes(sms_client: httpx.Client) -> None:
    assert sms_client.get("/nope").status_code == 404
    wrong_method = sms_client.get("/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert sms_client.post("/healthz").status_code == 405


def test_concurrent_requests_with_one_key_store_once(sms_sink: SmsSink, sms_dir: Path) -> None:
    results: list[httpx.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def worker() -> None:
        with httpx.Client(base_url=sms_sink.url) as client:
            barrier.wait()
            response = send(client, key="same")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(response.status_code for response in results) == [200] * 9 + [201]
    assert len({response.json()["id"] for response in results}) == 1
    assert len(read_sms(sms_dir)) == 1


def test_stop_releases_the_port(sms_dir: Path) -> None:
    sink = SmsSink(sms_dir, port=0)
    sink.start()
    port = sink.port
    sink.stop()
    sink.stop()
    with SmsSink(sms_dir, port=port) as again:
        assert httpx.get(f"{again.url}/healthz").status_code == 200
