"""``drop-erased`` against the local RabbitMQ (a quorum DLQ, as the platform declares them) and
a fake accounts API over HTTP (``GET /users/{id}``: 410 / 200 / 404, or 503 when told)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from signup_dlq.cli import main

pytestmark = pytest.mark.integration

KEY = "sk_signup-dlq_0123456789abcdef_" + "ef" * 32
ERASED = uuid.uuid4()
PRESENT = uuid.uuid4()
STRANGER = uuid.uuid4()


@dataclass
class FakeAccounts:
    """What the fake API answers, and what it was asked."""

    url: str = ""
    failing: bool = False
    asked: list[uuid.UUID] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        self.authorizations.add(authorization)
        if authorization != f"Bearer {KEY}":
            return 401, {"detail": "invalid credentials", "errors": []}
        user_id = uuid.UUID(path.removeprefix("/users/"))
        self.asked.append(user_id)
        if self.failing:
            return 503, {"detail": "database unavailable", "errors": []}
        if user_id == ERASED:
            erasure = {"user_id": str(user_id), "status": "complete"}
            return 410, {"detail": "user erased", "erasure": erasure}
        if user_id == PRESENT:
            return 200, {"user_id": str(user_id), "email": "present@example.test"}
        return 404, {"detail": "user not found", "errors": []}


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAccounts]:
    fake = FakeAccounts()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = fake.answer(self.path, self.headers.get("Authorization", ""))
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_URL", fake.url)
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", KEY)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def envelope(event_type: str, version: int, user_id: uuid.UUID) -> bytes:
    data = {"user_id": str(user_id), "email": f"{user_id.hex}@example.test", "full_name": "Ada"}
    return json.dumps(
        {"id": str(uuid.uuid4()), "type": event_type, "version": version, "data": data}
    ).encode()


SEEDED = [
    ("erased-v2", envelope("UserSignedUp", 2, ERASED)),
    ("present", envelope("UserSignedUp", 2, PRESENT)),
    ("erasure-request", envelope("UserErasureRequested", 1, ERASED)),
    ("erased-v1", envelope("UserSignedUp", 1, ERASED)),
    ("not-json", b"\x00\x01 not json"),
    ("stranger", envelope("UserSignedUp", 2, STRANGER)),
    ("erased-again", envelope("UserSignedUp", 2, ERASED)),
]
KEPT = ["present", "erasure-request", "not-json", "stranger"]


def headers_of(name: str, queue: str) -> dict[str, Any]:
    return {
        "x-signup-failure-kind": "permanent",
        "x-signup-error-type": "ValidationError",
        "x-signup-error-message": f"bad {name}",
        "x-signup-original-queue": queue,
        "x-first-death-queue": queue,
        "x-death": [{"queue": queue, "reason": "rejected", "count": 2, "exchange": "events"}],
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }


def seed(amqp: Any, queues: Any) -> None:
    for name, body in SEEDED:
        amqp.publish(
            queues.dlq,
            body,
            headers=headers_of(name, queues.queue),
            message_id=name,
            correlation_id=f"corr-{name}",
            type="UserSignedUp",
            app_id="accounts",
        )
    assert amqp.wait_depth(queues.dlq, len(SEEDED)) == len(SEEDED)


def test_drop_erased_drops_only_erased_users_dead_letters_and_keeps_the_rest_unchanged(
    amqp: Any, quorum_queues: Any, accounts: FakeAccounts, capsys: pytest.CaptureFixture[str]
) -> None:
    queues = quorum_queues
    seed(amqp, queues)

    assert main(["drop-erased", queues.dlq, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("would drop ")]) == 3
    assert "would drop erased-v2 (UserSignedUp v2" in out
    assert "would drop erased-v1 (UserSignedUp v1" in out
    assert "nothing changed" in out
    assert amqp.wait_depth(queues.dlq, len(SEEDED)) == len(SEEDED)

    assert main(["drop-erased", queues.dlq, "--yes"]) == 0
    captured = capsys.readouterr()
    assert (
        f"dropped 3 dead letter(s) of erased users from {queues.dlq}, kept 4 "
        "(user not erased: 1, user unknown to accounts: 1, no personal data in clear: 1, "
        "not a JSON event envelope: 1); "
        "asked accounts about 3 user(s)"
    ) in captured.out
    assert KEY not in captured.out + captured.err

    kept = amqp.drain(queues.dlq)
    assert [m.properties.message_id for m in kept] == KEPT
    bodies = dict(SEEDED)
    for message in kept:
        name = message.properties.message_id
        assert message.body == bodies[name]
        # The dry run gave the messages back: a quorum queue counts that delivery (as `show`).
        headers = {k: v for k, v in message.headers.items() if k != "x-delivery-count"}
        assert headers == headers_of(name, queues.queue), "the failure reason stays"
        assert message.properties.correlation_id == f"corr-{name}"
        assert (message.properties.type, message.properties.app_id) == ("UserSignedUp", "accounts")
        assert message.properties.content_type == "application/json"
        assert message.properties.delivery_mode == 2
    # One request per user and run (dry run, then the real one), always with the key.
    assert Counter(accounts.asked) == {ERASED: 2, PRESENT: 2, STRANGER: 2}
    assert accounts.authorizations == {f"Bearer {KEY}"}


def test_accounts_failing_stops_and_leaves_every_message_in_the_dlq(
    amqp: Any, quorum_queues: Any, accounts: FakeAccounts, capsys: pytest.CaptureFixture[str]
) -> None:
    queues = quorum_queues
    seed(amqp, queues)
    accounts.failing = True
    assert main(["drop-erased", queues.dlq, "--yes"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: accounts at {accounts.url} answered 503")
    assert f"stopped after 0 message(s) (0 dropped), the rest is still in {queues.dlq}" in err
    assert err.count("\n") == 1
    assert amqp.wait_depth(queues.dlq, len(SEEDED)) == len(SEEDED)
    names = Counter(m.properties.message_id for m in amqp.drain(queues.dlq))
    assert names == Counter(name for name, _ in SEEDED)
    assert accounts.asked == [ERASED]


def test_a_refused_key_stops_before_anything_is_dropped(
    amqp: Any,
    quorum_queues: Any,
    accounts: FakeAccounts,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queues = quorum_queues
    seed(amqp, queues)
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", "sk_signup-dlq_0123456789abcdef_00")
    assert main(["drop-erased", queues.dlq, "--yes"]) == 1
    err = capsys.readouterr().err
    assert "refused the API key (401: invalid credentials)" in err
    assert "sk_signup-dlq" not in err
    assert amqp.wait_depth(queues.dlq, len(SEEDED)) == len(SEEDED)


# --- drop-erased --all [--every]: every DLQ of a vhost of its own ----------------------------


@pytest.fixture
def vhost() -> Iterator[str]:
    """A scratch vhost (the administrator may use it): ``--all`` walks every DLQ of a vhost,
    so the other tests' queues of ``/`` stay out of reach."""
    name = f"dlqtest-{uuid.uuid4().hex[:12]}"
    admin = urllib.parse.urlsplit(os.environ["RABBITMQ_MANAGEMENT_URL"])  # conftest: guest
    api = httpx.Client(
        base_url=f"http://{admin.hostname}:{admin.port}/api",
        auth=(admin.username or "guest", admin.password or "guest"),
        timeout=30,
    )
    api.put(f"/vhosts/{name}").raise_for_status()
    api.put(f"/permissions/{name}/guest", json=dict.fromkeys(("configure", "write", "read"), ".*"))
    try:
        yield name
    finally:
        api.delete(f"/vhosts/{name}")
        api.close()


def declare_all(helper: Any, vhost: str) -> tuple[str, Any]:
    """In ``vhost``: two quorum DLQs (one seeded, one empty) and a service queue holding an
    erased user's signup (not a DLQ: never touched); its URL and a helper connection to it
    (``helper``'s class: conftest's ``Amqp``)."""
    url = f"{os.environ['AMQP_URL'].rsplit('/', 1)[0]}/{vhost}"
    amqp = type(helper)(url)
    for name in ("a.user_signed_up.dlq", "b.user_signed_up.dlq", "a.user_signed_up"):
        amqp.channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    for name, body in SEEDED:
        amqp.publish("a.user_signed_up.dlq", body, message_id=name)
    amqp.publish("a.user_signed_up", envelope("UserSignedUp", 2, ERASED), message_id="live")
    assert amqp.wait_depth("a.user_signed_up.dlq", len(SEEDED)) == len(SEEDED)
    return url, amqp


def test_drop_erased_all_walks_every_dlq_holding_messages_and_nothing_else(
    amqp: Any, vhost: str, accounts: FakeAccounts, capsys: pytest.CaptureFixture[str]
) -> None:
    url, amqp = declare_all(amqp, vhost)
    management = os.environ["RABBITMQ_MANAGEMENT_URL"]
    try:
        argv = ["drop-erased", "--all", "--yes", "--amqp-url", url, "--management-url", management]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "drop-erased a.user_signed_up.dlq: 7 message(s): dropped 3, kept 4" in out
        assert "b.user_signed_up.dlq" not in out  # empty: its depth alone, not walked
        assert "drop-erased --all done: 2 dead-letter queue(s), 1 walked, 1 empty" in out
        kept = amqp.drain("a.user_signed_up.dlq")
        assert [m.properties.message_id for m in kept] == KEPT
        assert amqp.depth("a.user_signed_up") == 1  # a service queue is no DLQ
    finally:
        amqp.close()


def test_the_periodic_runner_serves_metrics_and_stops_on_sigterm(
    amqp: Any, vhost: str, accounts: FakeAccounts
) -> None:
    url, helper = declare_all(amqp, vhost)
    helper.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SIGNUP_DLQ_AMQP_URL": url}
    argv = ["drop-erased", "--all", "--yes", "--every", "1", "--metrics-port", str(port)]
    runner = subprocess.Popen(
        [sys.executable, "-m", "signup_dlq", *argv], env=env, stdout=subprocess.PIPE, text=True
    )
    try:

        def metrics() -> str:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            return ""

        deadline = time.monotonic() + 30
        while 'passes_total{result="done"} 2' not in metrics() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = metrics()
        assert 'signup_dlq_drop_erased_passes_total{result="done"} 2' in text, text
        assert 'signup_dlq_drop_erased_dropped_total{queue="a.user_signed_up.dlq"} 3' in text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    finally:
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=20)
    assert runner.returncode == 0, out
    assert "drop-erased --all done: 2 dead-letter queue(s), 1 walked, 1 empty: dropped 3" in out
    assert "drop-erased --all stopped after" in out
