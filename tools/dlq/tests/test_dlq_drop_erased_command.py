"""Unit tests of the ``drop-erased`` command: refusals, confirmation, dry run, what it prints
and its exit codes (the broker and accounts replaced by in-memory fakes)."""

from __future__ import annotations

import argparse
import io
import json
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from rich.console import Console

from signup_dlq import erased_command
from signup_dlq.commands import Context
from signup_dlq.deadletter import RawMessage
from signup_dlq.erased import UserStatus
from signup_dlq.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    AccountsApiError,
    UsageError,
)

DLQ = "notifications.user_signed_up.dlq"
ERASED = uuid.UUID("00000000-0000-4000-8000-00000000000e")
PRESENT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
KEY = "sk_signup-dlq_0123456789abcdef_" + "cd" * 32
ENV = {"SIGNUP_DLQ_ACCOUNTS_API_KEY": KEY}


def dead_letter(name: str, user_id: uuid.UUID) -> RawMessage:
    body = {"id": name, "type": "UserSignedUp", "version": 2, "data": {"user_id": str(user_id)}}
    return RawMessage(
        0,
        json.dumps(body).encode(),
        {"message_id": name, "headers": {"x-signup-failure-kind": "permanent"}},
    )


class FakeBroker:
    instances: ClassVar[list[FakeBroker]] = []
    queued: ClassVar[list[RawMessage]] = []
    interrupt_on_get: ClassVar[int | None] = None

    def __init__(self, amqp_url: str) -> None:
        self.returned: deque[RawMessage] = deque()  # given back: delivered again first
        self.queue: deque[RawMessage] = deque(FakeBroker.queued)
        self.unacked: dict[int, RawMessage] = {}
        self.tag = 0
        self.confirms = self.closed = False
        FakeBroker.instances.append(self)

    def __enter__(self) -> FakeBroker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True
        for tag in sorted(self.unacked):
            self.returned.append(self.unacked.pop(tag))

    def depth(self, queue: str) -> int:
        return len(self.returned) + len(self.queue)

    def enable_confirms(self) -> None:
        self.confirms = True

    def get(self, queue: str) -> RawMessage | None:
        if FakeBroker.interrupt_on_get == self.tag + 1:
            raise KeyboardInterrupt
        source = self.returned or self.queue
        if not source:
            return None
        self.tag += 1
        message = source.popleft()
        self.unacked[self.tag] = message
        return RawMessage(self.tag, message.body, message.properties)

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        assert self.confirms and routing_key == DLQ
        self.queue.append(RawMessage(0, body, dict(properties)))

    def ack(self, delivery_tag: int) -> None:
        del self.unacked[delivery_tag]

    def requeue(self, delivery_tag: int) -> None:
        self.returned.append(self.unacked.pop(delivery_tag))

    def names(self) -> list[str]:
        return [m.properties["message_id"] for m in (*self.returned, *self.queue)]


class FakeAccounts:
    instances: ClassVar[list[FakeAccounts]] = []
    fail = False

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.display_url = base_url
        FakeAccounts.instances.append(self)

    def status(self, user_id: uuid.UUID) -> UserStatus:
        if FakeAccounts.fail:
            raise AccountsApiError(f"cannot reach accounts at {self.base_url} (refused)")
        return UserStatus.ERASED if user_id == ERASED else UserStatus.PRESENT


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    FakeBroker.instances, FakeBroker.queued, FakeBroker.interrupt_on_get = [], [], None
    FakeAccounts.instances, FakeAccounts.fail = [], False
    monkeypatch.setattr(erased_command, "Broker", FakeBroker)
    monkeypatch.setattr(erased_command, "AccountsClient", FakeAccounts)
    yield


class Streams:
    def __init__(
        self,
        answers: list[str] | None = None,
        interactive: bool = False,
        environ: Mapping[str, str] = ENV,
    ) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.questions: list[str] = []
        self.answers = list(answers or [])
        self.context = Context(
            amqp_url="amqp://op:pw@broker:5672/%2F",
            management_url="http://op:pw@broker:15672",
            out=Console(file=self.out, width=300, highlight=False, soft_wrap=True),
            err=Console(file=self.err, width=200),
            stdout=io.StringIO(),
            interactive=interactive,
            ask=self.ask,
            environ=environ,
        )

    def ask(self, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0) if self.answers else "n"


def args(**values: Any) -> argparse.Namespace:
    defaults = {"queue": DLQ, "yes": False, "dry_run": False, "accounts_url": None}
    return argparse.Namespace(**{**defaults, **values})


def queue_mixed() -> None:
    FakeBroker.queued = [
        dead_letter("a", ERASED),
        dead_letter("b", PRESENT),
        dead_letter("c", ERASED),
        dead_letter("d", PRESENT),
    ]


def run(streams: Streams, **values: Any) -> int:
    return erased_command.cmd_drop_erased(args(**values), streams.context)


def test_a_queue_that_is_not_a_dlq_is_refused_unopened() -> None:
    with pytest.raises(UsageError, match="not a dead-letter queue"):
        run(Streams(), queue="notifications.user_signed_up", yes=True)
    assert FakeBroker.instances == []


def test_without_yes_and_without_a_terminal_nothing_is_opened() -> None:
    with pytest.raises(UsageError, match="without --yes"):
        run(Streams(interactive=False))
    assert FakeBroker.instances == []


def test_without_an_api_key_nothing_is_opened() -> None:
    with pytest.raises(UsageError, match="SIGNUP_DLQ_ACCOUNTS_API_KEY"):
        run(Streams(environ={}), yes=True)
    assert FakeBroker.instances == []


def test_the_accounts_url_comes_from_the_option_else_the_environment() -> None:
    queue_mixed()
    run(Streams(environ={**ENV, "SIGNUP_DLQ_ACCOUNTS_URL": "http://env:8000/"}), yes=True)
    run(Streams(), yes=True, accounts_url="http://option:8000")
    run(Streams(), yes=True)
    assert [(a.base_url, a.api_key) for a in FakeAccounts.instances] == [
        ("http://env:8000", KEY),
        ("http://option:8000", KEY),
        ("http://127.0.0.1:8000", KEY),
    ]


def test_an_empty_dlq_asks_nothing() -> None:
    streams = Streams(interactive=True)
    assert run(streams) == EXIT_OK
    assert streams.questions == []
    assert f"{DLQ} is empty: dropped 0, kept 0" in streams.out.getvalue()


def test_declined_drops_nothing() -> None:
    queue_mixed()
    streams = Streams(["n"], interactive=True)
    assert run(streams) == EXIT_ERROR
    assert "Drop the dead letters of erased users from" in streams.questions[0]
    assert "4 message(s) to check" in streams.questions[0]
    assert "aborted: nothing dropped" in streams.out.getvalue()
    assert FakeBroker.instances[0].names() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("answers", "yes"), [(["y"], False), ([], True)])
def test_confirmed_drops_the_erased_and_says_what_it_did(answers: list[str], yes: bool) -> None:
    queue_mixed()
    streams = Streams(answers, interactive=True)
    assert run(streams, yes=yes) == EXIT_OK
    [fake] = FakeBroker.instances
    assert fake.closed and fake.names() == ["b", "d"] and fake.unacked == {}
    assert (
        f"dropped 2 dead letter(s) of erased users from {DLQ}, kept 2 (user not erased: 2); "
        "asked accounts about 2 user(s)"
    ) in streams.out.getvalue()


def test_a_dry_run_lists_what_it_would_drop_and_changes_nothing() -> None:
    queue_mixed()
    streams = Streams(interactive=False)  # no --yes needed: nothing changes
    assert run(streams, dry_run=True) == EXIT_OK
    [fake] = FakeBroker.instances
    assert fake.names() == ["a", "b", "c", "d"] and not fake.confirms
    out = streams.out.getvalue()
    assert f"would drop a (UserSignedUp v2, user {ERASED})" in out
    assert f"would drop c (UserSignedUp v2, user {ERASED})" in out
    assert "would drop b" not in out
    assert (
        f"dry run: would drop 2 dead letter(s) of erased users from {DLQ}, would keep 2 "
        "(user not erased: 2); asked accounts about 2 user(s); nothing changed"
    ) in out


def test_accounts_unreachable_is_an_error_that_leaves_the_queue_whole() -> None:
    queue_mixed()
    FakeAccounts.fail = True
    with pytest.raises(AccountsApiError) as raised:
        run(Streams(), yes=True)
    assert raised.value.exit_code == EXIT_ERROR
    assert "stopped after 0 message(s) (0 dropped), the rest is still in" in str(raised.value)
    assert FakeBroker.instances[0].names() == ["a", "b", "c", "d"]


def test_an_interrupted_walk_says_so_and_exits_130() -> None:
    queue_mixed()
    FakeBroker.interrupt_on_get = 3
    streams = Streams()
    assert run(streams, yes=True) == EXIT_INTERRUPTED
    out = streams.out.getvalue()
    assert f"interrupted: dropped 1 dead letter(s) of erased users from {DLQ}, kept 1" in out
    assert f"the rest is still in {DLQ}" in out
    assert sorted(FakeBroker.instances[0].names()) == ["b", "c", "d"]
