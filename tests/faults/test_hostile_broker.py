"""Fault scenarios of issue 15 on the broker side: a quiet period longer than two heartbeat
intervals followed by a retryable failure, deliveries the AMQP client cannot decode, and an
outbox row the relay cannot publish at the head of 50 good ones.

Each ends like the other fault scenarios: wait for the platform to settle, then every effect of
every signup exactly once (``platform_harness.checks.settle``), plus its own assertions. They
run in ``make faults`` (FAULTS=all), not in the CI subset.
"""

import dataclasses
import time
import uuid
from datetime import UTC, datetime

import pytest

from accounts.actions import UserNotFoundError
from platform_harness.brokerlog import BrokerLog
from platform_harness.checks import settle
from platform_harness.load import Load
from platform_harness.raw_amqp import CULPRITS, publish_raw
from platform_harness.scenarios import (
    CONSUMER_PROGRAMS,
    QUIET_HEARTBEAT_SECONDS,
    QUIET_RETRY_DELAYS_MS,
    RELAY_PROGRAMS,
    LogMark,
    dead_letter_reason,
    publish,
    service_queues,
)
from platform_harness.stack import Stack, wait_until
from signup_contracts.amqp import ATTEMPTS_HEADER, ERROR_TYPE_HEADER, FAILURE_KIND_HEADER
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.messaging.topology import delay_label
from signup_shared.messaging.wire import OutgoingMessage

# Longer than pytest's 300 s default: a settle that times out must report what is missing.
pytestmark = pytest.mark.timeout(600)

ACCOUNTS_QUEUE = "accounts.space_provisioned"


def signups(stack: Stack, count: int, rate: float, offset: int = 0) -> Load:
    return Load(
        stack.url("accounts", "/signups"),
        tag=f"{stack.name}-{offset}",
        count=count,
        rate=rate,
        offset=offset,
    )


@pytest.mark.parametrize("scenario", ["quiet_then_retry"])
def test_quiet_then_retry(stack: Stack, scenario: str) -> None:
    """After a quiet period, a retryable failure is retried on every delay, then dead-lettered
    as ``exhausted`` with the handler's error; no connection was closed for missed heartbeats
    and no relay had to reconnect."""
    broker = BrokerLog(stack.name).mark()
    signups(stack, 20, 10).start().join()
    settle(stack, f"{scenario} (before the quiet)", time.monotonic())
    logs = LogMark(stack, CONSUMER_PROGRAMS + RELAY_PROGRAMS)
    quiet = 4 * QUIET_HEARTBEAT_SECONDS
    time.sleep(quiet)  # nothing at all happens: only heartbeats keep the connections open

    unknown = Envelope.wrap(
        SpaceProvisioned(user_id=uuid.uuid4(), space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id=f"{scenario}-{uuid.uuid4().hex[:8]}",
    )
    # A user accounts does not know, straight onto accounts' queue (through the default
    # exchange): stats would count it as an activation if it came through ``events``.
    message = OutgoingMessage.from_envelope(unknown, exchange="")
    publish(stack, [dataclasses.replace(message, routing_key=ACCOUNTS_QUEUE)])
    signups(stack, 20, 10, offset=1_000).start().join()
    dlq = f"{ACCOUNTS_QUEUE}.dlq"
    wait_until(
        lambda: stack.queues().get(dlq) == 1,
        sum(QUIET_RETRY_DELAYS_MS) / 1000 + 60,
        0.5,
        "the unknown user's event dead-lettered",
    )
    figures = settle(stack, scenario, time.monotonic(), expected_dlq=1)
    assert (figures.lost, figures.duplicated) == (0, 0)

    [dead] = stack.dead_letters(dlq)
    headers = dead["properties"]["headers"]
    retries = len(QUIET_RETRY_DELAYS_MS)
    assert headers[FAILURE_KIND_HEADER] == "exhausted", headers
    assert headers[ERROR_TYPE_HEADER] == UserNotFoundError.__name__, headers
    assert headers[ATTEMPTS_HEADER] == retries + 1, headers
    rerouted = [
        (r.get("kind"), r.get("attempt"), r.get("target"))
        for r in logs.records("accounts-consumer", "message.rerouted")
    ]
    retry_queues = [f"{ACCOUNTS_QUEUE}.retry.{delay_label(d)}" for d in QUIET_RETRY_DELAYS_MS]
    assert rerouted == [
        *(("transient", n + 1, queue) for n, queue in enumerate(retry_queues)),
        ("exhausted", retries + 1, dlq),
    ], rerouted
    for name in CONSUMER_PROGRAMS:
        text = logs.since(name)
        assert "PublishError" not in text and "unprocessable" not in text, (name, text[-3000:])
    reconnects = {name: logs.since(name).count("relay.retrying") for name in RELAY_PROGRAMS}
    missed = broker.missed_heartbeats()
    print(
        f"{scenario}: quiet={quiet}s heartbeat={QUIET_HEARTBEAT_SECONDS}s "
        f"attempts={headers[ATTEMPTS_HEADER]} kind={headers[FAILURE_KIND_HEADER]} "
        f"error={headers[ERROR_TYPE_HEADER]} relay_retrying={sum(reconnects.values())} "
        f"missed_heartbeat_closes={len(missed)}"
    )
    assert reconnects == dict.fromkeys(RELAY_PROGRAMS, 0), reconnects
    assert missed == [], missed


@pytest.mark.parametrize("scenario", ["undecodable_frames"])
def test_undecodable_frames(stack: Stack, scenario: str) -> None:
    """Deliveries py-amqp cannot decode, on every consumer queue while signups flow: no process
    exits, each culprit lands in its queue's DLQ with a reason, no good event is dead-lettered."""
    pids = stack.pids()
    load = signups(stack, 300, 30).start()
    queues = service_queues(stack)
    messages = [(q, c.body(q), c.properties) for c in CULPRITS for q in queues]
    half = len(messages) // 2
    time.sleep(2.0)
    publish_raw(stack.amqp_url, messages[:half])
    for _ in range(3):
        time.sleep(1.0)
        stack.assert_running()
    publish_raw(stack.amqp_url, messages[half:])
    load.join()
    figures = settle(stack, scenario, time.monotonic(), expected_dlq=len(messages))
    assert (figures.lost, figures.duplicated) == (0, 0)
    stack.assert_running()
    assert stack.pids() == pids  # nothing exited (the harness restarts nothing by itself)
    reasons: dict[str, list[str]] = {}
    for queue in queues:
        dead = stack.dead_letters(f"{queue}.dlq", count=len(messages))
        bodies = sorted(str(m["payload"]) for m in dead)
        assert bodies == sorted(c.body(queue).decode() for c in CULPRITS), (queue, bodies)
        reasons[queue] = [dead_letter_reason(m) for m in dead]
    print(f"{scenario}: culprits={len(messages)} queues={len(queues)} reasons={reasons}")
    for queue, found in reasons.items():
        for reason in found:  # ours (poison or unprocessable) or rejected by tag: never a crash
            assert reason in ("permanent", "unprocessable", "broker:rejected"), (queue, found)


@pytest.mark.parametrize("scenario", ["parked_outbox_row"])
def test_parked_outbox_row(stack: Stack, scenario: str) -> None:
    """An outbox row that cannot travel (correlation id of 100 x '€': 300 bytes, more than an
    AMQP short string) at the head of 50 good rows: the relay parks it and publishes the rest."""
    stack.signal("accounts-relay")  # the rows queue up while it is down
    bad = Envelope.wrap(
        UserSignedUp(
            user_id=uuid.uuid4(),
            subscription_id=uuid.uuid4(),
            email=f"parked-{stack.name}@example.com",
            full_name="Parked Row",
            plan="free",
            signed_up_at=datetime.now(UTC),
        ),
        producer="accounts",
        correlation_id="parked-row",
    )
    stack.execute(
        "accounts",
        "INSERT INTO outbox (event_id, routing_key, event_type, version, producer,"
        " correlation_id, payload) VALUES (:id, :key, :type, 1, 'accounts', :cid, :payload)",
        id=bad.id,
        key=bad.routing_key,
        type=bad.type,
        cid="€" * 100,
        payload=bad.to_json().decode(),
    )
    signups(stack, 50, 25).start().join()
    [(head,)] = stack.query("accounts", "SELECT event_id FROM outbox ORDER BY position LIMIT 1")
    [(pending,)] = stack.query("accounts", "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    # each signup is two outbox rows: UserSignedUp v2 and its sealed v3 copy for the history
    assert (head, pending) == (bad.id, 1 + 50 * 2)
    restarted = time.monotonic()
    stack.restart("accounts-relay")
    figures = settle(stack, scenario, restarted, timeout=90)
    assert (figures.signups, figures.lost, figures.duplicated) == (50, 0, 0)
    [(parked_at, reason)] = stack.query(
        "accounts", "SELECT parked_at, parked_reason FROM outbox WHERE event_id = :id", id=bad.id
    )
    [(behind,)] = stack.query(
        "accounts", "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL"
    )
    listing = stack.command("accounts-relay", "accounts", "outbox", "parked")
    print(
        f"{scenario}: parked={parked_at is not None} pending_behind={behind} "
        f"settle={figures.settle_seconds:.1f}s reason={reason!r}"
    )
    assert parked_at is not None and reason, (parked_at, reason)
    assert behind == 0
    assert str(bad.id) in listing, listing
    assert figures.settle_seconds < 60  # promptly: not after an operator or a long backoff
