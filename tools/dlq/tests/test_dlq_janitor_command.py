"""Unit tests of ``signup-dlq drop-erased --all [--every]``: what the command line refuses, a
single pass's lines and exit codes, and SIGTERM ending the periodic runner cleanly at a message
boundary (the broker, the management API and accounts replaced by in-memory fakes)."""

from __future__ import annotations

import json
import signal
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from signup_dlq import janitor_command
from signup_dlq.cli import main
from signup_dlq.deadletter import RawMessage
from signup_dlq.erased import UserStatus
from signup_dlq.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, AccountsApiError
from signup_dlq.management import QueueInfo

ERASED = uuid.UUID("00000000-0000-4000-8000-00000000000e")
PRESENT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
DLQS = ("notifications.user_signed_up.dlq", "provisioning.user_signed_up.dlq")
KEY = "sk_signup-dlq-janitor_0123456789abcdef_" + "cd" * 32


def dead_letter(name: str, user_id: uuid.UUID) -> RawMessage:
    body = {"id": name, "type": "UserSignedUp", "version": 2, "data": {"user_id": str(user_id)}}
    return RawMessage(0, json.dumps(body).encode(), {"message_id": name})


class FakeBroker:
    queues: ClassVar[dict[str, deque[RawMessage]]] = {}
    opened: ClassVar[int] = 0
    signal_on_get: ClassVar[int | None] = None  # the n-th get sends this process SIGTERM
    gets: ClassVar[int] = 0

    def __init__(self, amqp_url: str) -> None:
        FakeBroker.opened += 1
        self.unacked: dict[int, tuple[str, RawMessage]] = {}

    def __enter__(self) -> FakeBroker:
        return self

    def __exit__(self, *_exc: object) -> None:
        for queue, message in self.unacked.values():
            FakeBroker.queues[queue].appendleft(message)

    def depth(self, queue: str) -> int:
        return len(FakeBroker.queues[queue])

    def enable_confirms(self) -> None:
        pass

    def get(self, queue: str) -> RawMessage | None:
        FakeBroker.gets += 1
        if FakeBroker.gets == FakeBroker.signal_on_get:
            signal.raise_signal(signal.SIGTERM)
        if not FakeBroker.queues[queue]:
            return None
        message = FakeBroker.queues[queue].popleft()
        self.unacked[FakeBroker.gets] = (queue, message)
        return RawMessage(FakeBroker.gets, message.body, message.properties)

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        FakeBroker.queues[routing_key].append(RawMessage(0, body, dict(properties)))

    def ack(self, delivery_tag: int) -> None:
        del self.unacked[delivery_tag]

    def requeue(self, delivery_tag: int) -> None:
        queue, message = self.unacked.pop(delivery_tag)
        FakeBroker.queues[queue].appendleft(message)


class FakeManagement:
    def __init__(self, url: str) -> None:
        self.url = url

    def list_dlqs(self, vhost: str) -> list[QueueInfo]:
        return [QueueInfo(name, 0, 0, 0, 0, "quorum", True) for name in DLQS]


class FakeAccounts:
    failing = False

    def __init__(self, base_url: str, api_key: str) -> None:
        self.display_url = base_url
        assert api_key == KEY

    def status(self, user_id: uuid.UUID) -> UserStatus:
        if FakeAccounts.failing:
            raise AccountsApiError("accounts at http://accounts answered 503")
        return UserStatus.ERASED if user_id == ERASED else UserStatus.PRESENT


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    FakeBroker.queues = {
        DLQS[0]: deque([dead_letter("n1", ERASED), dead_letter("n2", PRESENT)]),
        DLQS[1]: deque(),
    }
    FakeBroker.opened, FakeBroker.gets, FakeBroker.signal_on_get = 0, 0, None
    FakeAccounts.failing = False
    monkeypatch.setattr(janitor_command, "Broker", FakeBroker)
    monkeypatch.setattr(janitor_command, "ManagementClient", FakeManagement)
    monkeypatch.setattr(janitor_command, "AccountsClient", FakeAccounts)
    monkeypatch.setenv("SIGNUP_DLQ_ACCOUNTS_API_KEY", KEY)
    yield


def names(queue: str) -> list[str]:
    return [m.properties["message_id"] for m in FakeBroker.queues[queue]]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["drop-erased"], "give a QUEUE (<queue>.dlq) or --all"),
        (["drop-erased", DLQS[0], "--all", "--yes"], "either a QUEUE or --all"),
        (["drop-erased", "--all"], "--all asks no question: add --yes"),
        (["drop-erased", DLQS[0], "--every", "60", "--yes"], "go with --all"),
        (["drop-erased", "--all", "--every", "60", "--dry-run"], "--dry-run is for one pass"),
        (["drop-erased", "--all", "--yes", "--metrics-port", "9"], "the metrics of --every"),
    ],
)
def test_what_the_command_line_refuses_before_touching_anything(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert says in capsys.readouterr().err
    assert FakeBroker.opened == 0


def test_one_pass_over_every_dlq_reports_each_walked_queue_and_the_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["drop-erased", "--all", "--yes"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"drop-erased {DLQS[0]}: 2 message(s): dropped 1, kept 1 (user not erased: 1)" in out
    assert DLQS[1] not in out  # empty: not walked
    assert "drop-erased --all done: 2 dead-letter queue(s), 1 walked, 1 empty" in out
    assert names(DLQS[0]) == ["n2"]


def test_a_failed_single_pass_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    FakeAccounts.failing = True
    assert main(["drop-erased", "--all", "--yes"]) == EXIT_ERROR
    assert "drop-erased --all failed:" in capsys.readouterr().out
    assert names(DLQS[0]) == ["n1", "n2"]


def test_sigterm_stops_a_single_pass_at_a_message_boundary_with_130() -> None:
    FakeBroker.signal_on_get = 1
    assert main(["drop-erased", "--all", "--yes"]) == EXIT_INTERRUPTED
    assert names(DLQS[0]) == ["n2"]  # the message in hand was finished
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back


def test_sigterm_ends_the_periodic_runner_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    FakeBroker.signal_on_get = 2  # during the first pass, after one message
    assert main(["drop-erased", "--all", "--yes", "--every", "3600"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "drop-erased --all every 3600 s" in out
    assert "drop-erased --all stopped: 2 dead-letter queue(s), 1 walked" in out
    assert "drop-erased --all stopped after 1 pass(es)" in out
    assert names(DLQS[0]) == ["n2"]  # dropped n1, kept n2: then stopped, nothing lost
