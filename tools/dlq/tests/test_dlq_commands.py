"""Unit tests of the commands: what each does with the broker and the management API, both
replaced by in-memory fakes (the real ones are exercised in test_dlq_integration)."""

from __future__ import annotations

import argparse
import io
import json
import signal
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from rich.console import Console

from signup_dlq import commands
from signup_dlq.deadletter import RawMessage
from signup_dlq.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from signup_dlq.management import QueueInfo

DLQ = "stats.user_signed_up.dlq"
ORIGINAL = "stats.user_signed_up"


class FakeBroker:
    """The ``Broker`` adapter over one in-memory queue per name; records what was done."""

    instances: ClassVar[list[FakeBroker]] = []

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.queues: dict[str, deque[RawMessage]] = {DLQ: deque(QUEUED)}
        self.published: list[tuple[str, bytes, dict[str, Any]]] = []
        self.acked: list[int] = []
        self.confirms = self.closed = False
        self.interrupt_after: int | None = INTERRUPT_AFTER[0]
        self.ctrl_c_during_publish: dict[int, int] = dict(CTRL_C_DURING_PUBLISH)
        FakeBroker.instances.append(self)

    def __enter__(self) -> FakeBroker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True

    def depth(self, queue: str) -> int:
        return len(self.queues.get(queue, ()))

    def peek(self, queue: str, limit: int) -> list[RawMessage]:
        return list(self.queues[queue])[:limit]

    def purge(self, queue: str) -> int:
        purged = len(self.queues[queue])
        self.queues[queue].clear()
        return purged

    def enable_confirms(self) -> None:
        self.confirms = True

    def get(self, queue: str) -> RawMessage | None:
        if self.interrupt_after is not None and len(self.acked) == self.interrupt_after:
            raise KeyboardInterrupt
        return self.queues[queue].popleft() if self.queues[queue] else None

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        assert self.confirms, "a replay publishes with confirms only"
        for _ in range(self.ctrl_c_during_publish.get(len(self.published) + 1, 0)):
            signal.raise_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
        self.published.append((routing_key, body, dict(properties)))

    def ack(self, delivery_tag: int) -> None:
        self.acked.append(delivery_tag)
        if FAIL_AGAIN[0]:  # the replayed copy fails again and comes back into the DLQ
            self.queues[DLQ].append(dead_letter(100 + delivery_tag))

    def requeue(self, delivery_tag: int) -> None:
        raise AssertionError("nothing fails to publish here")


QUEUED: list[RawMessage] = []
INTERRUPT_AFTER: list[int | None] = [None]
CTRL_C_DURING_PUBLISH: dict[int, int] = {}  # publish number -> how many Ctrl-C arrive during it
FAIL_AGAIN = [False]


def dead_letter(tag: int, original_queue: str = ORIGINAL) -> RawMessage:
    return RawMessage(
        delivery_tag=tag,
        body=json.dumps({"id": f"event-{tag}", "data": {}}).encode(),
        properties={
            "message_id": f"event-{tag}",
            "headers": {
                "x-signup-failure-kind": "exhausted",
                "x-signup-original-queue": original_queue,
            },
        },
    )


@pytest.fixture(autouse=True)
def fake_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    QUEUED.clear()
    INTERRUPT_AFTER[0] = None
    CTRL_C_DURING_PUBLISH.clear()
    FAIL_AGAIN[0] = False
    FakeBroker.instances.clear()
    monkeypatch.setattr(commands, "Broker", FakeBroker)
    yield


class Streams:
    def __init__(self, answers: list[str] | None = None, interactive: bool = False) -> None:
        self.out, self.err, self.stdout = io.StringIO(), io.StringIO(), io.StringIO()
        self.questions: list[str] = []
        self.answers = list(answers or [])
        self.context = commands.Context(
            amqp_url="amqp://op:pw@broker:5672/signup",
            management_url="http://op:pw@broker:15672",
            out=Console(file=self.out, width=200, highlight=False, soft_wrap=True),
            err=Console(file=self.err, width=200),
            stdout=self.stdout,
            interactive=interactive,
            ask=self.ask,
        )

    def ask(self, question: str) -> str:
        self.questions.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def args(**values: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, "yes": False, "limit": None, **values})


def broker() -> FakeBroker:
    [only] = FakeBroker.instances
    assert only.closed, "the command leaves the broker connection closed"
    return only


# --- refusals, before any connection --------------------------------------------------------


@pytest.mark.parametrize("command", [commands.cmd_show, commands.cmd_replay, commands.cmd_purge])
def test_a_queue_that_is_not_a_dead_letter_queue_is_refused_unopened(command: Any) -> None:
    with pytest.raises(UsageError, match="not a dead-letter queue"):
        command(args(queue=ORIGINAL, yes=True), Streams().context)
    assert FakeBroker.instances == []


@pytest.mark.parametrize("command", [commands.cmd_replay, commands.cmd_purge])
def test_without_yes_and_without_a_terminal_nothing_is_opened(command: Any) -> None:
    with pytest.raises(UsageError, match="without --yes"):
        command(args(queue=DLQ), Streams(interactive=False).context)
    assert FakeBroker.instances == []


# --- purge ------------------------------------------------------------------------------------


def test_purging_an_empty_queue_says_so_and_asks_nothing() -> None:
    streams = Streams(interactive=True)
    assert commands.cmd_purge(args(queue=DLQ), streams.context) == EXIT_OK
    assert streams.questions == []
    assert "already empty: purged 0" in streams.out.getvalue()


@pytest.mark.parametrize("answer", ["n", "", "no", "yess"])
def test_a_purge_not_confirmed_purges_nothing(answer: str) -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2))
    streams = Streams([answer], interactive=True)
    assert commands.cmd_purge(args(queue=DLQ), streams.context) == EXIT_ERROR
    assert streams.questions == [f"Purge 2 messages from {DLQ}? [y/N] "]
    assert broker().depth(DLQ) == 2
    assert "aborted: nothing purged" in streams.out.getvalue()


def test_end_of_input_at_the_question_is_a_no() -> None:
    QUEUED.append(dead_letter(1))
    streams = Streams([], interactive=True)
    assert commands.cmd_purge(args(queue=DLQ), streams.context) == EXIT_ERROR
    assert broker().depth(DLQ) == 1


@pytest.mark.parametrize(("answers", "yes"), [(["y"], False), (["  YES "], False), ([], True)])
def test_a_confirmed_purge_empties_the_queue_and_counts(answers: list[str], yes: bool) -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3))
    streams = Streams(answers, interactive=True)
    assert commands.cmd_purge(args(queue=DLQ, yes=yes), streams.context) == EXIT_OK
    assert broker().depth(DLQ) == 0
    assert f"purged 3 message(s) from {DLQ}" in streams.out.getvalue()


# --- replay -----------------------------------------------------------------------------------


def test_replaying_an_empty_queue_moves_nothing_and_asks_nothing() -> None:
    streams = Streams(interactive=True)
    assert commands.cmd_replay(args(queue=DLQ), streams.context) == EXIT_OK
    assert streams.questions == []
    assert f"replayed 0 message(s) from {DLQ} to {ORIGINAL}" in streams.out.getvalue()


def test_a_replay_not_confirmed_moves_nothing() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2))
    streams = Streams(["n"], interactive=True)
    assert commands.cmd_replay(args(queue=DLQ), streams.context) == EXIT_ERROR
    assert "Replay 2 message(s)" in streams.questions[0]
    assert broker().published == [] and broker().depth(DLQ) == 2


def test_a_replay_moves_each_message_to_its_original_queue_and_acks_it() -> None:
    QUEUED.extend([dead_letter(1), dead_letter(2, "stats.space_provisioned")])
    streams = Streams()
    assert commands.cmd_replay(args(queue=DLQ, yes=True), streams.context) == EXIT_OK
    fake = broker()
    assert [(target, body) for target, body, _ in fake.published] == [
        (ORIGINAL, QUEUED[0].body),
        ("stats.space_provisioned", QUEUED[1].body),
    ]
    assert fake.acked == [1, 2] and fake.depth(DLQ) == 0
    assert all(p["message_id"] for _, _, p in fake.published)
    assert (
        f"replayed 2 message(s) from {DLQ} to stats.space_provisioned, {ORIGINAL}"
        in streams.out.getvalue()
    )


def test_a_replay_takes_no_more_than_the_limit_or_the_depth_seen_at_the_start() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3))
    streams = Streams()
    assert commands.cmd_replay(args(queue=DLQ, yes=True, limit=2), streams.context) == EXIT_OK
    assert broker().acked == [1, 2] and broker().depth(DLQ) == 1
    FakeBroker.instances.clear()
    FAIL_AGAIN[0] = True
    assert commands.cmd_replay(args(queue=DLQ, yes=True, limit=50), streams.context) == EXIT_OK
    assert broker().acked == [1, 2, 3], "a copy that came back is not replayed a second time"
    assert broker().depth(DLQ) == 3


def test_an_interrupted_replay_reports_what_moved_and_leaves_the_rest() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3))
    INTERRUPT_AFTER[0] = 1
    streams = Streams()
    assert commands.cmd_replay(args(queue=DLQ, yes=True), streams.context) == EXIT_INTERRUPTED
    assert broker().acked == [1] and broker().depth(DLQ) == 2
    out = streams.out.getvalue()
    assert f"interrupted: replayed 1 message(s) from {DLQ} to {ORIGINAL}" in out
    assert f"the rest is still in {DLQ}" in out


def test_ctrl_c_finishes_the_message_being_moved_then_stops_cleanly() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3, 4))
    CTRL_C_DURING_PUBLISH[2] = 1
    before = signal.getsignal(signal.SIGINT)
    streams = Streams()
    assert commands.cmd_replay(args(queue=DLQ, yes=True), streams.context) == EXIT_INTERRUPTED
    # The second message, published when Ctrl-C came, is acked too: nothing half done.
    assert broker().acked == [1, 2] and len(broker().published) == 2
    assert broker().depth(DLQ) == 2
    assert f"interrupted: replayed 2 message(s) from {DLQ} to {ORIGINAL}" in streams.out.getvalue()
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back


def test_a_second_ctrl_c_aborts_at_once_and_still_reports() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3))
    CTRL_C_DURING_PUBLISH[2] = 2
    before = signal.getsignal(signal.SIGINT)
    streams = Streams()
    assert commands.cmd_replay(args(queue=DLQ, yes=True), streams.context) == EXIT_INTERRUPTED
    assert broker().acked == [1] and broker().depth(DLQ) == 1  # the 2nd was taken, not acked
    assert f"interrupted: replayed 1 message(s) from {DLQ} to {ORIGINAL}" in streams.out.getvalue()
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back


# --- show -------------------------------------------------------------------------------------


def test_show_as_json_lists_the_messages_without_taking_them() -> None:
    QUEUED.extend(dead_letter(tag) for tag in (1, 2, 3))
    streams = Streams()
    assert commands.cmd_show(args(queue=DLQ, limit=2, json=True), streams.context) == EXIT_OK
    records = json.loads(streams.stdout.getvalue())
    assert len(records) == 2
    assert broker().depth(DLQ) == 3 and broker().acked == []
    assert streams.out.getvalue() == ""


def test_show_describes_each_message_and_says_they_stay() -> None:
    QUEUED.append(dead_letter(1))
    streams = Streams()
    assert commands.cmd_show(args(queue=DLQ, limit=10), streams.context) == EXIT_OK
    out = streams.out.getvalue()
    assert f"{DLQ}: 1 message(s), showing 1 (left in the queue)" in out
    assert "message 1/1" in out and "exhausted" in out and "(JSON)" in out


def test_show_of_an_empty_queue_peeks_nothing() -> None:
    streams = Streams()
    assert commands.cmd_show(args(queue=DLQ, limit=10), streams.context) == EXIT_OK
    assert f"{DLQ}: 0 message(s), showing 0" in streams.out.getvalue()


# --- list -------------------------------------------------------------------------------------


class FakeManagement:
    queues: ClassVar[list[QueueInfo]] = []
    vhosts: ClassVar[list[str]] = []

    def __init__(self, management_url: str) -> None:
        self.management_url = management_url

    def list_dlqs(self, vhost: str) -> list[QueueInfo]:
        FakeManagement.vhosts.append(vhost)
        return FakeManagement.queues


def queue_info(name: str, messages: int) -> QueueInfo:
    return QueueInfo(name, messages, messages, 0, 0, "quorum", True)


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> type[FakeManagement]:
    FakeManagement.queues, FakeManagement.vhosts = [], []
    monkeypatch.setattr(commands, "ManagementClient", FakeManagement)
    return FakeManagement


def test_list_asks_for_the_vhost_of_the_amqp_url(management: type[FakeManagement]) -> None:
    streams = Streams()
    assert commands.cmd_list(args(), streams.context) == EXIT_OK
    assert management.vhosts == ["signup"]
    assert "no dead-letter queues (*.dlq) in vhost 'signup'" in streams.out.getvalue()


def test_list_as_json_is_one_document(management: type[FakeManagement]) -> None:
    management.queues = [queue_info(DLQ, 3)]
    streams = Streams()
    assert commands.cmd_list(args(json=True), streams.context) == EXIT_OK
    [record] = json.loads(streams.stdout.getvalue())
    assert record["name"] == DLQ and record["messages"] == 3


def test_list_prints_a_row_per_queue_and_the_total(management: type[FakeManagement]) -> None:
    management.queues = [queue_info(DLQ, 3), queue_info("audit.user_signed_up.dlq", 0)]
    streams = Streams()
    assert commands.cmd_list(args(), streams.context) == EXIT_OK
    out = streams.out.getvalue()
    assert DLQ in out and "audit.user_signed_up.dlq" in out
    assert "2 dead-letter queue(s), 3 message(s) in total" in out
