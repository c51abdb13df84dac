"""Fault injection: the whole system as processes, 500 signups while something breaks.

Each scenario then waits for the system to settle and checks every effect of every signup
against the accounts database: one email, one SMS when a phone was given, one space, an active
subscription, stats equal to the truth, every service and retry queue empty, and no dead
letter but the deliberately injected ones. Each prints one line of figures.

`make faults` runs every scenario; `make test` runs the subset in conftest.CI_SCENARIOS.
The CI scenarios of conftest.SHARED_SCENARIOS share one stack: each numbers its signups after
those already there and expects the dead letters already there plus its own
(``platform_harness.checks.Baseline``); the checks cover every signup the stack took.
Scenarios listed in conftest.STACK_SHAPES run the platform under supervisord (as `make run`
does) and/or with several processes per consuming role.
"""

import json
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import amqp
import pytest

from platform_harness.checks import Baseline, settle
from platform_harness.load import Load
from platform_harness.scenarios import service_queues
from platform_harness.stack import Stack, wait_until
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.wire import OutgoingMessage

SIGNUPS = 500
RATE = 60.0
CONSUMERS = ("notifications", "provisioning", "stats", "accounts-consumer")


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=180)


def during(load: Load, every: float, action: Callable[[int], None], times: int) -> None:
    """Run ``action`` ``times`` times, ``every`` seconds apart, while the load runs."""
    for n in range(times):
        time.sleep(every)
        if not load.running:
            return
        action(n)


def kill_consumers(stack: Stack, load: Load) -> int:
    def kill(n: int) -> None:
        name = CONSUMERS[n % len(CONSUMERS)]
        stack.signal(name)
        time.sleep(0.5)
        stack.restart(name)

    during(load, 1.2, kill, 8)
    return 0


def kill_relay(stack: Stack, load: Load) -> int:
    time.sleep(1.0)
    stack.signal("accounts-relay")
    time.sleep(3.0)  # signups keep committing to the outbox meanwhile
    for _ in range(3):
        stack.restart("accounts-relay")
        time.sleep(0.4)  # most likely in the middle of publishing the backlog
        stack.signal("accounts-relay")
    stack.restart("accounts-relay")
    return 0


def restart_broker(stack: Stack, load: Load) -> int:
    time.sleep(2.0)
    sh("rabbitmqctl", "stop_app")
    time.sleep(3.0)
    sh("rabbitmqctl", "start_app")
    sh("rabbitmqctl", "await_startup")
    return 0


def close_connections(stack: Stack, load: Load) -> int:
    # Every connection of the platform (its vhost), not those of other tests on the same broker.
    close = ("rabbitmqctl", "close_all_connections", "--vhost", stack.name, "fault test")
    during(load, 2.0, lambda _n: sh(*close), 3)
    return 0


def restart_postgres(stack: Stack, load: Load) -> int:
    time.sleep(2.0)
    version = subprocess.run(
        ["ls", "/etc/postgresql"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    sh("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")
    return 0


def smtp_down(stack: Stack, load: Load) -> int:
    time.sleep(1.0)
    stack.signal("smtp-sink")
    time.sleep(30.0)
    stack.restart("smtp-sink")
    return 0


def sms_failing(stack: Stack, load: Load) -> int:
    time.sleep(1.0)
    stack.sms_faults({"status": 500, "count": 150})
    return 1  # the recipient refused with 400: its notification fails and is dead-lettered


POISONED_KEYS = (
    "accounts.user_signed_up",
    "accounts.user_signed_up.v2",
    "provisioning.space_provisioned",
)
POISONED_QUEUE_SUFFIXES = (".user_signed_up", ".space_provisioned")


def inject_poison(stack: Stack, load: Load) -> int:
    huge = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
    bodies = [b"not json at all", b'{"id": "x", "type": "UserSignedUp"}', b"", huge]
    bodies[2] = json.dumps({**json.loads(_published_event(stack)), "version": 7}).encode()
    publisher = ConfirmingPublisher(stack.amqp_url)
    # Each consumer queue binds one version's key of UserSignedUp: publish under both.
    for routing_key in POISONED_KEYS:
        publisher.publish_batch(
            [
                OutgoingMessage(
                    body,
                    routing_key,
                    f"poison-{uuid.uuid4().hex[:8]}",
                    "UserSignedUp",
                    1,
                    "poison",
                    "fault-test",
                )
                for body in bodies
            ]
        )
    publisher.close()
    poisoned = [
        name
        for name in stack.queues()
        if name.endswith(POISONED_QUEUE_SUFFIXES) and ".retry." not in name
    ]
    return len(bodies) * len(poisoned)  # every poison in every queue of those events


def publish_duplicates(stack: Stack, load: Load) -> int:
    load.join()
    rows = stack.query("accounts", "SELECT payload, routing_key FROM outbox LIMIT 200")
    publisher = ConfirmingPublisher(stack.amqp_url)
    for _ in range(2):
        publisher.publish_batch(
            [
                OutgoingMessage(
                    payload.encode(),
                    routing_key,
                    _event_id(payload),
                    "UserSignedUp",
                    1,
                    "dup",
                    "accounts",
                )
                for payload, routing_key in rows
            ]
        )
    publisher.close()
    return 0


# Headers a hostile or broken internal client may send, of every AMQP field type. Not sendable:
# 2**70 (AMQP integers have 64 bits; 2**63 - 1 overflows as soon as the runtime adds one) and
# NaN/infinity (RabbitMQ 3.10 closes the publishing channel with 541 INTERNAL_ERROR: its table
# parser has no clause for them, so no consumer can ever receive one).
HOSTILE_HEADERS: list[dict[str, Any]] = [
    {"x-event-version": "abc"},
    {"x-event-version": -1},
    {"x-event-version": 2**63 - 1},
    {"x-event-version": 1.5},
    {"x-event-version": 1e308, "x-signup-attempts": -0.0},
    {"x-signup-attempts": 2**63 - 1},
    {"x-signup-attempts": -(2**63)},
    {"x-signup-attempts": -1},
    {"x-signup-attempts": 2.5},
    {"x-signup-attempts": 1e300},
    {"x-signup-attempts": "2"},
    {"x-signup-attempts": {"nested": {"deeper": [1, "two", None, {"x": b"\xff"}]}}},
    {"x-signup-attempts": [1, 2, 3], "x-event-version": [1]},
    {"x-signup-attempts": b"\xff\xfe", "x-event-version": b"\x00\x01"},
    {"x-signup-attempts": Decimal("1.5"), "x-event-version": True},
    {"x-signup-attempts": None, "x-event-version": datetime(1970, 1, 1, tzinfo=UTC)},
    {"x-death": "not a list", "x-signup-first-failure-at": 12},
    {"x-death": [{"count": "many", "queue": 7}, 3], "x-signup-original-queue": ["x"]},
    {"compression": "application/x-gzip", "x-signup-error-message": "\x00é" * 500},
    {"x-signup-attempts": 3, "x-signup-failure-kind": {"a": 1}, "x-signup-service": 0.0},
]


def hostile_bodies(stack: Stack) -> list[bytes]:
    """Bodies no consumer may act on: malformed, of no known event, of an unknown version."""
    real = json.loads(_published_event(stack))
    unknown_type = {**real, "id": str(uuid.uuid4()), "type": "NoSuchEvent"}
    unknown_version = {**real, "id": str(uuid.uuid4()), "version": 7}
    return [
        b"not json at all",
        b"",
        b"[1, 2, 3]",
        b'{"id": 5, "type": ["x"], "version": "abc", "data": null}',
        b"\xff\xfe\x00 not utf-8",
        json.dumps(unknown_type).encode(),
        json.dumps(unknown_version).encode(),
        b'{"a": ' * 2000,
    ]


def publish_raw(stack: Stack, messages: list[tuple[str, bytes, dict[str, Any]]]) -> None:
    """Publish (queue, body, headers) through the default exchange, confirmed, as is."""
    url = urllib.parse.urlsplit(stack.amqp_url)
    connection = amqp.Connection(
        host=f"{url.hostname}:{url.port or 5672}",
        userid=url.username,
        password=url.password,
        virtual_host=urllib.parse.unquote(url.path[1:]),
        confirm_publish=True,  # each publish waits for its confirm: a quorum queue may drop
        # what a channel closed before the confirm had published (seen: the last 3-9 of 100)
    )
    connection.connect()
    try:
        channel = connection.channel()
        for n, (queue, body, headers) in enumerate(messages):
            properties: dict[str, Any] = {"application_headers": headers, "delivery_mode": 2}
            if n % 3 == 0:  # some without any property; others with odd ones
                properties.update(
                    message_id="\x00" * 3,
                    correlation_id="é" * 120,
                    type="NoSuchEvent",
                    content_type="text/x-garbage",
                )
            channel.basic_publish(amqp.Message(body, **properties), exchange="", routing_key=queue)
    finally:
        connection.close()


def inject_hostile_headers(stack: Stack, load: Load) -> int:
    """Every hostile header, on an unusable body, into every service queue, twice mid-load."""
    bodies = hostile_bodies(stack)
    queues = service_queues(stack)
    messages = [
        (queue, bodies[(n + q) % len(bodies)], headers)
        for q, queue in enumerate(queues)
        for n, headers in enumerate(HOSTILE_HEADERS)
    ]
    half = len(messages) // 2
    publish_raw(stack, messages[:half])
    during(load, 1.0, lambda _n: stack.assert_running(), 2)
    publish_raw(stack, messages[half:])
    during(load, 1.0, lambda _n: stack.assert_running(), 5)
    load.join()
    stack.assert_running()  # no message stopped any process
    return len(messages)  # each one dead-lettered, once


def kill_supervisor(stack: Stack, load: Load) -> int:
    """SIGKILL supervisord mid-load: every process must be gone within 5 s; then start again."""
    time.sleep(3.0)
    running = stack.platform_pids()
    assert len(running) >= len(stack.programs), running
    stack.kill_supervisor()
    killed_at = time.monotonic()
    wait_until(
        lambda: not stack.platform_pids(),
        5.0,
        0.05,
        f"no platform process left (of {sorted(running.values())})",
    )
    print(
        f"supervisor_killed: {len(running)} processes gone "
        f"{time.monotonic() - killed_at:.1f}s after SIGKILL to supervisord"
    )
    time.sleep(2.0)  # the load keeps retrying against a platform that is down
    stack.start_supervisor()
    stack.wait_ready(180)
    return 0


def kill_one_consumer_instance_at_a_time(stack: Stack, load: Load) -> int:
    """Two processes per consuming role under supervisord; SIGKILL one instance at a time."""
    queues = service_queues(stack)
    wait_until(
        lambda: all(n >= 2 for n in stack.queue_consumers(queues).values()),
        60,
        0.5,
        "two consumers on every service queue",
    )
    instances = [f"{role}-{i}" for i in (1, 2) for role in CONSUMERS]

    for instance in instances:  # all of them, even if the load is done: its backlog is not
        time.sleep(1.0)
        pid = stack.program_pid(instance)
        assert pid is not None, instance
        stack.kill_pid(pid)  # supervisord restarts it; the other instance keeps consuming
    load.join()
    stack.wait_ready(120)
    restarts = stack.log("supervisord").count("(terminated by SIGKILL; not expected)")
    assert restarts == len(instances), f"supervisord saw {restarts} kills"
    return 0


def _published_event(stack: Stack) -> bytes:
    [(payload,)] = wait_until(
        lambda: stack.query("accounts", "SELECT payload FROM outbox LIMIT 1"),
        30,
        message="a first event",
    )
    return str(payload).encode()


def _event_id(payload: str) -> str:
    return payload.split('"id":"', 1)[1].split('"', 1)[0]


SCENARIOS: dict[str, Callable[[Stack, Load], int]] = {
    "consumers_killed": kill_consumers,
    "relay_killed": kill_relay,
    "broker_restarted": restart_broker,
    "connections_closed": close_connections,
    "postgres_restarted": restart_postgres,
    "smtp_down_30s": smtp_down,
    "sms_gateway_failing": sms_failing,
    "poison": inject_poison,
    "duplicates": publish_duplicates,
    "hostile_headers": inject_hostile_headers,
    "supervisor_killed": kill_supervisor,
    "consumers_killed_2_each": kill_one_consumer_instance_at_a_time,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_nothing_lost_nothing_twice(stack: Stack, scenario: str) -> None:
    before = Baseline.read(stack)
    load = Load(
        stack.url("accounts", "/signups"),
        tag=stack.name,
        count=SIGNUPS,
        rate=RATE,
        offset=before.signups,
    )
    refused: frozenset[str] = frozenset()
    if scenario == "sms_gateway_failing":
        refused = frozenset({load.body(1)["phone"]})
        stack.sms_faults({"fail_recipients": {phone: 400 for phone in refused}})
    load.start()
    expected_dlq = SCENARIOS[scenario](stack, load)
    load.join()
    done = time.monotonic()
    figures = settle(
        stack, scenario, done, expected_dlq=before.dlq + expected_dlq, sms_refused=refused
    )
    assert figures.signups == before.signups + SIGNUPS
    assert (figures.lost, figures.duplicated) == (0, 0)
    if scenario == "hostile_headers":  # each queue's hostile messages in its own DLQ
        queues = stack.queues()
        assert {q: queues[f"{q}.dlq"] for q in service_queues(stack)} == {
            q: before.dead_letters.get(f"{q}.dlq", 0) + len(HOSTILE_HEADERS)
            for q in service_queues(stack)
        }
    for phone in refused:
        statuses = stack.query(
            "notifications",
            "SELECT status FROM notifications WHERE recipient = :phone",
            phone=phone,
        )
        assert [str(status) for (status,) in statuses] == ["failed"]
