"""Unit tests of ``drop-erased --all`` (``signup_dlq.janitor``): one pass over every DLQ (empty
ones skipped on their depth alone, accounts asked once per user per pass), stop requests at a
message boundary, the periodic runner, and the metrics it serves (in-memory fakes, no I/O)."""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

import pytest

from signup_dlq.deadletter import RawMessage
from signup_dlq.erased import UserStatus
from signup_dlq.errors import AccountsApiError
from signup_dlq.janitor import Janitor, Sweep
from signup_dlq.janitor_metrics import JanitorMetrics

ERASED = uuid.UUID("00000000-0000-4000-8000-00000000000e")
PRESENT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
A, B, C = "a.user_signed_up.dlq", "b.user_signed_up.dlq", "c.user_signed_up.dlq"


def dead_letter(name: str, user_id: uuid.UUID) -> RawMessage:
    body = {"id": name, "type": "UserSignedUp", "version": 2, "data": {"user_id": str(user_id)}}
    return RawMessage(0, json.dumps(body).encode(), {"message_id": name})


class Broker:
    """Several queues; a ``get`` past ``stop_after_gets`` calls ``on_get`` (a signal arriving)."""

    def __init__(self, queues: Mapping[str, list[RawMessage]]) -> None:
        self.queues = {name: deque(messages) for name, messages in queues.items()}
        self.unacked: dict[int, tuple[str, RawMessage]] = {}
        self.tag = 0
        self.depths: list[str] = []
        self.gets: list[str] = []
        self.on_get: Any = None
        self.confirms = False
        self.opened = self.closed = 0

    def __enter__(self) -> Broker:
        self.opened += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed += 1

    def depth(self, queue: str) -> int:
        self.depths.append(queue)
        return len(self.queues[queue])

    def enable_confirms(self) -> None:
        self.confirms = True

    def get(self, queue: str) -> RawMessage | None:
        self.gets.append(queue)
        if self.on_get is not None:
            self.on_get(len(self.gets))
        if not self.queues[queue]:
            return None
        self.tag += 1
        message = self.queues[queue].popleft()
        self.unacked[self.tag] = (queue, message)
        return RawMessage(self.tag, message.body, message.properties)

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        assert self.confirms
        self.queues[routing_key].append(RawMessage(0, body, dict(properties)))

    def ack(self, delivery_tag: int) -> None:
        del self.unacked[delivery_tag]

    def requeue(self, delivery_tag: int) -> None:
        queue, message = self.unacked.pop(delivery_tag)
        self.queues[queue].appendleft(message)

    def names(self, queue: str) -> list[str]:
        return [m.properties["message_id"] for m in self.queues[queue]]


class Accounts:
    def __init__(self) -> None:
        self.asked: list[uuid.UUID] = []
        self.failing = False

    def status(self, user_id: uuid.UUID) -> UserStatus:
        self.asked.append(user_id)
        if self.failing:
            raise AccountsApiError("cannot reach accounts at http://accounts (refused)")
        return UserStatus.ERASED if user_id == ERASED else UserStatus.PRESENT


def janitor(broker: Broker, accounts: Accounts, lines: list[str], **kw: Any) -> Janitor:
    return Janitor(lambda: broker, lambda: [A, B, C], accounts, report=lines.append, **kw)


def three_queues() -> Broker:
    return Broker(
        {
            A: [dead_letter("a1", ERASED), dead_letter("a2", PRESENT)],
            B: [],
            C: [dead_letter("c1", PRESENT), dead_letter("c2", ERASED), dead_letter("c3", ERASED)],
        }
    )


def test_a_pass_walks_every_dlq_holding_messages_and_skips_the_empty_ones_on_their_depth() -> None:
    broker, accounts, lines = three_queues(), Accounts(), list[str]()
    sweep = janitor(broker, accounts, lines).sweep()
    assert broker.names(A) == ["a2"] and broker.names(C) == ["c1"]
    assert broker.depths == [A, B, C] and B not in broker.gets  # empty: one passive declare
    assert (sweep.listed, sweep.empty, [w.queue for w in sweep.walked]) == (3, 1, [A, C])
    assert (sweep.dropped, sweep.kept.total(), sweep.error, sweep.stopped) == (3, 2, None, False)
    assert sorted(accounts.asked) == sorted([ERASED, PRESENT])  # once per user per pass
    assert broker.unacked == {} and broker.opened == broker.closed == 1
    assert lines[0].startswith(f"drop-erased {A}: 2 message(s): dropped 1, kept 1 (user not")
    assert lines[1].startswith(f"drop-erased {C}: 3 message(s): dropped 2, kept 1")
    assert lines[2].startswith(
        "drop-erased --all done: 3 dead-letter queue(s), 2 walked, 1 empty: dropped 3 dead "
        "letter(s) of erased users, kept 2 (user not erased: 2); asked accounts about 2 user(s)"
    )


def test_a_dry_run_pass_changes_nothing() -> None:
    broker, lines = three_queues(), list[str]()
    sweep = janitor(broker, Accounts(), lines, dry_run=True).sweep()
    assert sweep.dropped == 3 and not broker.confirms
    # all given back (in which order is the broker's: README, "Drop-erased, precisely")
    assert sorted(broker.names(A)) == ["a1", "a2"]
    assert sorted(broker.names(C)) == ["c1", "c2", "c3"] and broker.unacked == {}


def test_accounts_failing_ends_the_pass_with_the_error_and_leaves_the_queue_whole() -> None:
    broker, accounts, lines = three_queues(), Accounts(), list[str]()
    accounts.failing = True
    sweep = janitor(broker, accounts, lines).sweep()
    assert sweep.error is not None and "cannot reach accounts" in sweep.error
    assert "stopped after 0 message(s)" in sweep.error
    assert broker.names(A) == ["a1", "a2"] and broker.gets == [A]  # C not reached
    assert lines[-1].startswith("drop-erased --all failed:")


def test_a_stop_request_ends_the_pass_at_the_next_message_boundary() -> None:
    broker, lines = three_queues(), list[str]()
    worker = janitor(broker, Accounts(), lines)

    def stop_after_first(gets: int) -> None:
        if gets == 1:
            worker.request_stop()  # a SIGTERM while the first message is being taken

    broker.on_get = stop_after_first
    sweep = worker.sweep()
    assert sweep.stopped and sweep.dropped == 1  # the message in hand was finished
    assert broker.names(A) == ["a2"] and broker.names(C) == ["c1", "c2", "c3"]
    assert broker.unacked == {} and lines[-1].startswith("drop-erased --all stopped:")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0  # every reading: one second later
        return self.now


def test_the_periodic_runner_repeats_until_stopped_and_survives_a_failed_pass() -> None:
    broker, accounts, lines = three_queues(), Accounts(), list[str]()
    sweeps: list[Sweep] = []
    accounts.failing = True
    worker = janitor(broker, accounts, lines, clock=Clock())

    def finished(sweep: Sweep) -> None:
        sweeps.append(sweep)
        accounts.failing = False  # accounts is back for the next pass
        if len(sweeps) == 3:
            worker.request_stop()

    worker.finished = finished
    assert worker.run_every(0.01) == 3
    assert [bool(s.error) for s in sweeps] == [True, False, False]
    assert (sweeps[1].dropped, sweeps[2].dropped, sweeps[2].kept.total()) == (3, 0, 2)
    assert broker.names(A) == ["a2"] and broker.names(C) == ["c1"]


def test_a_stop_before_the_first_pass_runs_none() -> None:
    worker = janitor(three_queues(), Accounts(), [])
    worker.request_stop()
    assert worker.run_every(60) == 0


def test_the_metrics_count_passes_drops_and_keeps_per_queue() -> None:
    broker, accounts = three_queues(), Accounts()
    metrics = JanitorMetrics(wall_clock=lambda: 1700000000.0)
    janitor(broker, accounts, [], finished=metrics.record).sweep()
    accounts.failing = True
    broker.queues[A].append(dead_letter("a3", ERASED))
    Janitor(lambda: broker, lambda: [A], Accounts(), finished=metrics.record).sweep()
    failing = Janitor(lambda: broker, lambda: [A], accounts, finished=metrics.record)
    failing.sweep()
    text = metrics.render()
    for line in (
        'signup_dlq_drop_erased_passes_total{result="done"} 2.0',
        'signup_dlq_drop_erased_passes_total{result="failed"} 1.0',
        'signup_dlq_drop_erased_passes_total{result="stopped"} 0.0',
        f'signup_dlq_drop_erased_dropped_total{{queue="{A}"}} 2.0',
        f'signup_dlq_drop_erased_kept_total{{queue="{A}"}} 2.0',
        f'signup_dlq_drop_erased_dropped_total{{queue="{C}"}} 2.0',
        "signup_dlq_drop_erased_last_success_timestamp_seconds 1.7e+09",
    ):
        assert line in text.splitlines(), line
    assert f'queue="{B}"' not in text  # an empty queue is never walked


@pytest.mark.parametrize("queue", ['a"b\\c\nd.dlq'])
def test_a_queue_name_is_escaped_in_its_label(queue: str) -> None:
    metrics = JanitorMetrics()
    broker = Broker({queue: [dead_letter("x", ERASED)]})
    Janitor(lambda: broker, lambda: [queue], Accounts(), finished=metrics.record).sweep()
    assert 'queue="a\\"b\\\\c\\nd.dlq"' in metrics.render()
