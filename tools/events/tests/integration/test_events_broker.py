"""signup-events against a real broker, in a scratch vhost of this test: a stream declared with
the runtime's own declaration, events published on ``events``; tail and stats read them, and a
replay lands in one queue of one service (bound to ``events.retry`` by its own name)."""

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import httpx
import pytest
from kombu import Connection

from signup_events import cli
from signup_shared.messaging import history_stream, topology
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import HistorySettings
from signup_shared.testing import amqp_url

pytestmark = pytest.mark.integration
MANAGEMENT = "http://127.0.0.1:15672"
EVENTS = 30


class Vhost:
    def __init__(self) -> None:
        self.name = f"evt{uuid.uuid4().hex[:10]}"
        url = urllib.parse.urlsplit(amqp_url())
        self.host = f"{url.hostname}:{url.port or 5672}"
        self.auth = (url.username or "guest", url.password or "guest")

    def api(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, MANAGEMENT + path, json=body, auth=self.auth, timeout=30)

    def url(self) -> str:
        return f"amqp://{self.auth[0]}:{self.auth[1]}@{self.host}/{self.name}"


@pytest.fixture
def vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    assert vhost.api("PUT", f"/api/vhosts/{vhost.name}").status_code in (201, 204)
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    vhost.api("PUT", f"/api/permissions/{vhost.name}/{vhost.auth[0]}", everything)
    with Connection(vhost.url()) as connection:
        topology.declare(connection, [ConsumerQueue("audit", "accounts.user_signed_up.v2")])
        history_stream.declare_history(connection, HistorySettings(replicas=1))
        producer = connection.Producer()
        for number in range(EVENTS):
            kind, key = (  # a signup is kept in the history as the sealed v3 only
                ("UserSignedUp", "accounts.user_signed_up.v3")
                if number % 3
                else ("SpaceProvisioned", "provisioning.space_provisioned")
            )
            producer.publish(
                json.dumps({"n": number}).encode(),
                exchange="events",
                routing_key=key,
                message_id=f"id-{number}",
                type=kind,
                app_id=key.split(".")[0],
                timestamp=int(time.time()),
                headers={"x-event-version": 3 if number % 3 else 1},
                content_type="application/json",
            )
        # No service queue is bound to v3: the live queue gets none of them.
        _, depth, _ = connection.default_channel.queue_declare("audit.user_signed_up", passive=True)
        assert depth == 0
    try:
        yield vhost
    finally:
        vhost.api("DELETE", f"/api/vhosts/{vhost.name}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tail_stats_and_replay(vhost: Vhost, capsys: pytest.CaptureFixture[str]) -> None:
    time.sleep(1)  # the stream commits its last chunk
    code, out, _ = run(capsys, "tail", "-n", "4", "--json", "--amqp-url", vhost.url())
    assert code == 0
    tail = [json.loads(line) for line in out.splitlines()]
    assert [event["id"] for event in tail] == [f"id-{n}" for n in range(26, 30)]
    assert tail[-1]["offset"] == EVENTS - 1
    assert tail[1]["routing_key"] == "provisioning.space_provisioned"
    assert tail[0]["type"] == "UserSignedUp" and tail[0]["version"] == 3
    assert (tail[0]["personal"], tail[1]["personal"]) == ("sealed", "-")
    assert (tail[1]["type"], tail[1]["version"], tail[1]["producer"]) == (
        "SpaceProvisioned",
        1,
        "provisioning",
    )

    code, out, _ = run(capsys, "stats", "--json", "--amqp-url", vhost.url())
    stats = json.loads(out)
    assert code == 0 and stats["total"] == EVENTS
    assert {(t["type"], t["version"]): t["count"] for t in stats["by_type"]} == {
        ("UserSignedUp", 3): 20,
        ("SpaceProvisioned", 1): 10,
    }
    code, out, _ = run(
        capsys, "stats", "--from", "10", "--to", "19", "--json", "--amqp-url", vhost.url()
    )
    assert json.loads(out)["total"] == 10

    code, out, err = run(
        capsys,
        "replay",
        "--service",
        "audit",
        "--from",
        "5",
        "--progress-every",
        "5",
        "--amqp-url",
        vhost.url(),
    )
    assert code == 0, err
    # offsets 5..29: 25 events, of which 8 SpaceProvisioned (audit has no queue for them)
    assert "replayed 17 event(s) into audit (audit.user_signed_up 17); skipped 8 of 25" in out
    assert err.count("read ") == 5
    with Connection(vhost.url()) as connection:
        _, depth, _ = connection.default_channel.queue_declare("audit.user_signed_up", passive=True)
        assert depth == 17
        got = connection.default_channel.basic_get("audit.user_signed_up", no_ack=True)
        assert got.properties["message_id"] == "id-5"
        assert "x-signup-replayed-at" in got.properties["application_headers"]


def test_replay_with_a_user_that_may_not_publish_there_is_refused(
    vhost: Vhost, capsys: pytest.CaptureFixture[str]
) -> None:
    user, password = f"evt-{uuid.uuid4().hex[:8]}", "pw-secret"
    vhost.api("PUT", f"/api/users/{user}", {"password": password, "tags": ""})
    try:
        # reads the stream and its own queues, writes nothing on events.retry but stats.*
        vhost.api(
            "PUT",
            f"/api/permissions/{vhost.name}/{user}",
            {"configure": "^$", "write": "^events\\.retry$", "read": ".*"},
        )
        vhost.api(
            "PUT",
            f"/api/topic-permissions/{vhost.name}/{user}",
            {"exchange": "events.retry", "write": "^stats\\.", "read": ".*"},
        )
        url = f"amqp://{user}:{password}@{vhost.host}/{vhost.name}"
        time.sleep(1)
        code, out, err = run(
            capsys, "replay", "--service", "audit", "--from", "first", "--amqp-url", url
        )
        assert code == 1
        assert "not allowed to publish into audit.user_signed_up" in err
        assert password not in err + out
        assert "replayed 0 event(s)" in out
    finally:
        vhost.api("DELETE", f"/api/users/{user}")


def test_unreachable_broker_exits_69_with_the_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "stats", "--amqp-url", "amqp://u:topsecret@127.0.0.1:1//")
    assert code == 69
    assert "topsecret" not in err and "127.0.0.1:1" in err and err.count("\n") == 1
