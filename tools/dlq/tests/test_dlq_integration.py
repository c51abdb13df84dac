"""Integration tests against the local RabbitMQ: the CLI run in-process (and as a process).

Each test gets its own ``dlqtest-<uuid>.user_signed_up`` queue and ``.dlq`` (fixture
``queues``), deleted afterwards even when the test fails.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from signup_contracts.amqp import FAILURE_HEADERS
from signup_dlq import broker as broker_module
from signup_dlq.cli import main
from signup_dlq.management import ManagementClient

pytestmark = pytest.mark.integration

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def seed(amqp: Any, queues: Any, envelope: Any, headers: Any, count: int) -> list[str]:
    """Put ``count`` consumer-dead-lettered messages in the DLQ; returns their message ids."""
    ids = [f"evt-{i}" for i in range(count)]
    for event_id in ids:
        amqp.publish(
            queues.dlq,
            envelope(event_id),
            headers=headers(queues.queue),
            message_id=event_id,
            correlation_id=f"corr-{event_id}",
            type="user_signed_up",
            app_id="accounts",
        )
    assert amqp.wait_depth(queues.dlq, count) == count
    return ids


# --- list ---------------------------------------------------------------------------------


def test_list_shows_dlq_depth(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    management: ManagementClient,
    vhost: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(amqp, queues, envelope, dead_letter_headers, 3)
    # The management API's message counts are refreshed every few seconds.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [q for q in management.list_dlqs(vhost) if q.name == queues.dlq]
        if found and found[0].messages == 3:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the management API never reported the DLQ depth")

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if queues.dlq in line)
    assert re.search(rf"{re.escape(queues.dlq)}\s*│\s*3\s*│", line), line
    assert queues.queue + " " not in out  # the service queue itself is not listed

    assert main(["list", "--json"]) == 0
    listed = {q["name"]: q for q in json.loads(capsys.readouterr().out)}
    assert listed[queues.dlq]["messages"] == 3
    assert listed[queues.dlq]["consumers"] == 0
    assert queues.queue not in listed


# --- show ---------------------------------------------------------------------------------


def test_show_decodes_and_leaves_messages_in_place(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    amqp.publish(
        queues.dlq,
        envelope("evt-json"),
        headers=dead_letter_headers(queues.queue, **{"x-signup-failure-kind": "permanent"}),
        message_id="evt-json",
    )
    amqp.publish(
        queues.dlq,
        b"\x00\xffnot json [bold]markup[/bold]" * 5000,  # ~150 KB of poison
        headers={
            "x-first-death-queue": queues.queue,
            "x-first-death-reason": "delivery_limit",
            "x-death": [{"count": 1, "reason": "delivery_limit", "queue": queues.queue}],
        },
        content_type="application/octet-stream",
    )
    amqp.publish(queues.dlq, envelope("evt-3"), headers=None, message_id="evt-3")
    assert amqp.wait_depth(queues.dlq, 3) == 3

    assert main(["show", queues.dlq]) == 0
    out = capsys.readouterr().out
    assert f"{queues.dlq}: 3 message(s), showing 3" in out
    assert "message 1/3" in out
    assert "evt-json" in out
    assert "permanent" in out
    assert "SmtpTimeout: SMTP server did not answer in 10s" in out
    assert "notifications" in out
    assert "accounts.user_signed_up" in out
    assert '"email": "evt-json@example.test"' in out  # pretty JSON body
    assert "broker: delivery_limit" in out
    assert "(not JSON, truncated)" in out
    assert "b'\\x00\\xffnot json [bold]markup[/bold]" in out  # no rich markup interpretation
    assert "unknown (no failure headers)" in out
    assert amqp.wait_depth(queues.dlq, 3) == 3

    assert main(["show", queues.dlq, "--limit", "2", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["index"] for r in records] == [1, 2]
    assert records[0]["message_id"] == "evt-json"
    assert records[0]["failure_kind"] == "permanent"
    assert records[0]["attempts"] == 5
    assert records[0]["original_queue"] == queues.queue
    assert records[0]["body"]["id"] == "evt-json"
    assert records[1]["dead_lettered_by"] == "broker"
    assert records[1]["body_is_json"] is False
    assert records[1]["body_size"] > 100_000
    assert amqp.wait_depth(queues.dlq, 3) == 3

    # Still in the original order, and nothing went to the service queue.
    remaining = amqp.drain(queues.dlq)
    assert [m.properties.message_id for m in remaining] == ["evt-json", None, "evt-3"]
    assert amqp.depth(queues.queue) == 0


def test_show_empty_dlq(queues: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", queues.dlq]) == 0
    assert "0 message(s), showing 0" in capsys.readouterr().out


def test_missing_queue_is_one_line_exit_1(queues: Any, capsys: pytest.CaptureFixture[str]) -> None:
    missing = queues.dlq.replace("dlqtest-", "dlqtest-missing-")
    for argv in (["show", missing], ["replay", missing, "--yes"], ["purge", missing, "--yes"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err == f"error: queue '{missing}' does not exist in vhost '/'\n"


# --- replay -------------------------------------------------------------------------------


def test_replay_moves_everything_back_with_rewritten_headers(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = seed(amqp, queues, envelope, dead_letter_headers, 4)

    assert main(["replay", queues.dlq, "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == (
        f"replayed 4 message(s) from {queues.dlq} to {queues.queue}"
    )
    assert amqp.depth(queues.dlq) == 0

    replayed = amqp.drain(queues.queue)
    assert [m.properties.message_id for m in replayed] == ids
    for event_id, message in zip(ids, replayed, strict=True):
        assert message.body == envelope(event_id)
        assert message.properties.correlation_id == f"corr-{event_id}"
        assert message.properties.type == "user_signed_up"
        assert message.properties.app_id == "accounts"
        assert message.properties.content_type == "application/json"
        assert message.properties.delivery_mode == 2
        headers = message.headers
        assert not set(FAILURE_HEADERS) & headers.keys()
        assert "x-death" not in headers
        assert headers["x-signup-replay-count"] == 1
        assert ISO_UTC.match(headers["x-signup-replayed-at"])
        assert headers["traceparent"].startswith("00-")  # unrelated headers are kept


def test_replay_limit_moves_exactly_that_many(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = seed(amqp, queues, envelope, dead_letter_headers, 5)

    assert main(["replay", queues.dlq, "--limit", "2", "--yes"]) == 0
    assert f"replayed 2 message(s) from {queues.dlq} to {queues.queue}" in capsys.readouterr().out
    assert [m.properties.message_id for m in amqp.drain(queues.queue)] == ids[:2]
    assert [m.properties.message_id for m in amqp.drain(queues.dlq)] == ids[2:]


def test_replay_increments_the_replay_count(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
) -> None:
    amqp.publish(
        queues.dlq,
        envelope("evt-again"),
        headers=dead_letter_headers(queues.queue, **{"x-signup-replay-count": 2}),
        message_id="evt-again",
    )
    assert amqp.wait_depth(queues.dlq, 1) == 1
    assert main(["replay", queues.dlq, "--yes"]) == 0
    (message,) = amqp.drain(queues.queue)
    assert message.headers["x-signup-replay-count"] == 3


def test_replay_of_a_message_dead_lettered_by_the_broker(
    amqp: Any, queues: Any, envelope: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real broker dead-letter (reject without requeue): x-death headers, no x-signup-*."""
    amqp.publish(queues.queue, envelope("evt-rejected"), message_id="evt-rejected")
    assert amqp.wait_depth(queues.queue, 1) == 1
    method, _properties, _body = amqp.channel.basic_get(queue=queues.queue, auto_ack=False)
    amqp.channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
    assert amqp.wait_depth(queues.dlq, 1) == 1

    assert main(["show", queues.dlq]) == 0
    assert "broker: rejected" in capsys.readouterr().out

    assert main(["replay", queues.dlq, "--yes"]) == 0
    assert f"to {queues.queue}" in capsys.readouterr().out
    (message,) = amqp.drain(queues.queue)
    assert message.properties.message_id == "evt-rejected"
    assert not [k for k in message.headers if k.startswith(("x-death", "x-first-death-"))]
    assert message.headers["x-signup-replay-count"] == 1


def test_replay_to_a_missing_queue_keeps_the_message(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = queues.queue.replace("dlqtest-", "dlqtest-gone-")
    amqp.publish(queues.dlq, envelope("evt-ok"), headers=dead_letter_headers(queues.queue))
    amqp.publish(queues.dlq, envelope("evt-lost"), headers=dead_letter_headers(gone))
    assert amqp.wait_depth(queues.dlq, 2) == 2

    assert main(["replay", queues.dlq, "--yes"]) == 1
    err = capsys.readouterr().err
    assert "unroutable" in err
    assert gone in err
    assert "stopped after replaying 1 message(s)" in err
    assert err.count("\n") == 1
    assert amqp.depth(queues.queue) == 1
    assert amqp.wait_depth(queues.dlq, 1) == 1


def test_replay_empty_dlq(queues: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", queues.dlq, "--yes"]) == 0
    assert f"replayed 0 message(s) from {queues.dlq} to {queues.queue}" in (capsys.readouterr().out)


def test_replay_interrupted_in_process_loses_nothing(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = seed(amqp, queues, envelope, dead_letter_headers, 5)
    real_publish = broker_module.Broker.publish
    calls = {"n": 0}

    def publish_then_ctrl_c(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_publish(self, *args, **kwargs)

    monkeypatch.setattr(broker_module.Broker, "publish", publish_then_ctrl_c)
    assert main(["replay", queues.dlq, "--yes"]) == 130
    out = capsys.readouterr().out
    assert f"interrupted: replayed 2 message(s) from {queues.dlq} to {queues.queue}" in out

    assert [m.properties.message_id for m in amqp.drain(queues.queue)] == ids[:2]
    assert amqp.wait_depth(queues.dlq, 3) == 3  # the taken-but-unacked one came back
    assert sorted(m.properties.message_id for m in amqp.drain(queues.dlq)) == ids[2:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_replay_killed_midway_loses_nothing(
    amqp: Any, queues: Any, envelope: Any, dead_letter_headers: Any, signum: int
) -> None:
    """The real CLI process, interrupted (Ctrl-C) or killed -9 while replaying."""
    total = 3000
    headers = dead_letter_headers(queues.queue)
    for i in range(total):
        amqp.publish(queues.dlq, envelope(f"evt-{i}"), headers=headers, message_id=f"evt-{i}")
    assert amqp.wait_depth(queues.dlq, total) == total

    process = subprocess.Popen(
        [sys.executable, "-m", "signup_dlq", "replay", queues.dlq, "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while amqp.depth(queues.queue) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the replay finished before it could be interrupted"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Once the connection is gone, the unacked message (if any) is back in the DLQ.
    deadline = time.monotonic() + 10
    while amqp.depth(queues.queue) + amqp.depth(queues.dlq) < total:
        assert time.monotonic() < deadline, "messages went missing"
        time.sleep(0.05)
    in_target = [m.properties.message_id for m in amqp.drain(queues.queue)]
    in_dlq = [m.properties.message_id for m in amqp.drain(queues.dlq)]
    assert set(in_target) | set(in_dlq) == {f"evt-{i}" for i in range(total)}
    assert len(in_target) + len(in_dlq) <= total + 1  # at worst one duplicate
    assert 0 < len(in_target) < total

    if signum == signal.SIGINT:
        assert process.returncode == 130, stderr
        match = re.search(r"interrupted: replayed (\d+) message\(s\)", stdout)
        assert match, (stdout, stderr)
        assert int(match[1]) <= len(in_target) <= int(match[1]) + 1
        assert "Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL


# --- purge --------------------------------------------------------------------------------


def test_purge_yes_empties_the_dlq(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(amqp, queues, envelope, dead_letter_headers, 3)
    assert main(["purge", queues.dlq, "--yes"]) == 0
    assert f"purged 3 message(s) from {queues.dlq}" in capsys.readouterr().out
    assert amqp.depth(queues.dlq) == 0
    assert amqp.depth(queues.queue) == 0


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "purged"), [("n", False), ("", False), ("y", True)])
def test_purge_asks_for_confirmation_on_a_tty(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    purged: bool,
) -> None:
    seed(amqp, queues, envelope, dead_letter_headers, 3)
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return answer

    monkeypatch.setattr("sys.stdin", FakeTty())
    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["purge", queues.dlq]) == (0 if purged else 1)
    assert prompts == [f"Purge 3 messages from {queues.dlq}? [y/N] "]
    out = capsys.readouterr().out
    if purged:
        assert f"purged 3 message(s) from {queues.dlq}" in out
        assert amqp.depth(queues.dlq) == 0
    else:
        assert "aborted" in out
        assert amqp.depth(queues.dlq) == 3


def test_replay_asks_for_confirmation_on_a_tty(
    amqp: Any,
    queues: Any,
    envelope: Any,
    dead_letter_headers: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(amqp, queues, envelope, dead_letter_headers, 2)
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        raise EOFError

    monkeypatch.setattr("sys.stdin", FakeTty())
    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["replay", queues.dlq, "--limit", "1"]) == 1
    assert prompts == [
        f"Replay 1 message(s) from {queues.dlq} to their original queue ({queues.queue})? [y/N] "
    ]
    assert "nothing replayed" in capsys.readouterr().out
    assert amqp.depth(queues.dlq) == 2


def test_purge_empty_dlq(queues: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", queues.dlq, "--yes"]) == 0
    assert "purged 0 message(s)" in capsys.readouterr().out


# --- quorum queues, dead-lettered by the broker (delivery-limit) ----------------------------


def test_quorum_delivery_limit_dead_letter_show_and_replay(
    amqp: Any,
    quorum_queues: Any,
    envelope: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queues = quorum_queues
    for event_id in ("evt-q1", "evt-q2"):
        amqp.publish(queues.queue, envelope(event_id), message_id=event_id)
    assert amqp.wait_depth(queues.queue, 2) == 2
    # A consumer that keeps failing: nack+requeue until the broker dead-letters the messages.
    for _ in range(20):
        method, _props, _body = amqp.channel.basic_get(queue=queues.queue, auto_ack=False)
        if method is None:
            if amqp.depth(queues.dlq) == 2:
                break
            time.sleep(0.05)
            continue
        amqp.channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
    assert amqp.wait_depth(queues.dlq, 2) == 2

    assert main(["show", queues.dlq, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["message_id"] for r in records} == {"evt-q1", "evt-q2"}
    for record in records:
        assert record["dead_lettered_by"] == "broker"
        assert record["failure_reason"] == "delivery_limit"
        assert record["original_queue"] == queues.queue
    assert amqp.wait_depth(queues.dlq, 2) == 2  # show left them in the quorum DLQ

    assert main(["replay", queues.dlq, "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"replayed 2 message(s) from {queues.dlq} to {queues.queue}" in out
    assert amqp.wait_depth(queues.dlq, 0) == 0
    replayed = amqp.drain(queues.queue)
    assert {m.properties.message_id for m in replayed} == {"evt-q1", "evt-q2"}
    for message in replayed:
        assert not [k for k in message.headers if k.startswith(("x-death", "x-first-death-"))]
        # The quorum queue counts deliveries of the replayed message afresh.
        assert message.headers.get("x-delivery-count", 0) == 0
        assert message.headers["x-signup-replay-count"] == 1
