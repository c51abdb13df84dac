"""Fault injection: the whole system as processes, 500 signups while something breaks.

Each scenario then waits for the system to settle and checks every effect of every signup
against the accounts database: one email, one SMS when a phone was given, one space, an active
subscription, stats equal to the truth, every service and retry queue empty, and no dead
letter but the deliberately injected ones. Each prints one line of figures.

`make faults` runs every scenario; `make test` runs the subset in conftest.CI_SCENARIOS.
"""

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest

from platform_harness.checks import settle
from platform_harness.load import Load
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
    during(load, 2.0, lambda _n: sh("rabbitmqctl", "close_all_connections", "fault test"), 3)
    return 0


def restart_postgres(stack: Stack, load: Load) -> int:
    time.sleep(2.0)
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
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


def inject_poison(stack: Stack, load: Load) -> int:
    huge = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
    bodies = [b"not json at all", b'{"id": "x", "type": "UserSignedUp"}', b"", huge]
    unknown_version = _published_event(stack).replace(b'"version":1', b'"version":7')
    bodies[2] = unknown_version
    publisher = ConfirmingPublisher(stack.amqp_url)
    for routing_key in ("accounts.user_signed_up", "provisioning.space_provisioned"):
        publisher.publish_batch([
            OutgoingMessage(body, routing_key, f"poison-{uuid.uuid4().hex[:8]}", "UserSignedUp",
                            1, "poison", "fault-test")
            for body in bodies
        ])
    publisher.close()
    return 4 * 5  # four poisons in each of the five service queues


def publish_duplicates(stack: Stack, load: Load) -> int:
    load.join()
    rows = stack.query("accounts", "SELECT payload, routing_key FROM outbox LIMIT 200")
    publisher = ConfirmingPublisher(stack.amqp_url)
    for _ in range(2):
        publisher.publish_batch([
            OutgoingMessage(payload.encode(), routing_key, _event_id(payload), "UserSignedUp", 1,
                            "dup", "accounts")
            for payload, routing_key in rows
        ])
    publisher.close()
    return 0


def _published_event(stack: Stack) -> bytes:
    [(payload,)] = wait_until(lambda: stack.query("accounts", "SELECT payload FROM outbox LIMIT 1"),
                              30, message="a first event")
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
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_nothing_lost_nothing_twice(stack: Stack, scenario: str) -> None:
    load = Load(stack.url("accounts", "/signups"), tag=stack.name, count=SIGNUPS, rate=RATE)
    refused: frozenset[str] = frozenset()
    if scenario == "sms_gateway_failing":
        refused = frozenset({load.body(1)["phone"]})
        stack.sms_faults({"fail_recipients": {phone: 400 for phone in refused}})
    load.start()
    expected_dlq = SCENARIOS[scenario](stack, load)
    load.join()
    done = time.monotonic()
    figures = settle(stack, scenario, done, expected_dlq=expected_dlq, sms_refused=refused)
    assert figures.signups == SIGNUPS
    assert (figures.lost, figures.duplicated) == (0, 0)
    for phone in refused:
        statuses = stack.query(
            "notifications", "SELECT status FROM notifications WHERE recipient = :phone",
            phone=phone,
        )
        assert [str(status) for (status,) in statuses] == ["failed"]
