"""Fault scenario: ``UserSignedUp`` v1 -> v2 rolled out live (``make faults`` only).

1,000 signups while accounts publishes both versions of every signup (one outbox row per
version, one event id); meanwhile every consuming process is restarted, one after another, as
a rollout to code that reads v2 does; then accounts-web is restarted with
``ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS=[2]`` (the window closes) while the load goes on.
Then the usual settle-and-check: every effect once (one welcome, one space, stats equal to the
truth), no queue left with messages, no dead letter; and the outbox shows the window: every
signup has a v2 copy, the v1 copies stop at the switch.
"""

import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from platform_harness.checks import settle
from platform_harness.load import Load
from platform_harness.stack import Stack, wait_until

SIGNUPS = 1_000
RATE = 60.0
CONSUMERS = ("notifications", "provisioning", "stats", "accounts-consumer")
VERSIONS_SETTING = "ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS"


def roll(stack: Stack, name: str) -> None:
    """Stop a process as a rollout does (SIGTERM: it finishes what it holds), start it again."""
    stack.signal(name, signal.SIGTERM)
    stack.restart(name)


def accepted(load: Load) -> int:
    return len(load.accepted)


@pytest.mark.parametrize("scenario", ["contract_rollout"])
def test_contract_rollout_v1_to_v2(
    make_stack: Callable[..., AbstractContextManager[Stack]], scenario: str
) -> None:
    with make_stack(scenario, **{VERSIONS_SETTING: "[1, 2]"}) as stack:
        load = Load(stack.url("accounts", "/signups"), tag=stack.name, count=SIGNUPS, rate=RATE)
        load.start()
        for name in CONSUMERS:  # one after another, each while the load runs
            wait_until(lambda: accepted(load) >= 100, 60, 0.2, "the load under way")
            time.sleep(2.0)
            roll(stack, name)
        wait_until(lambda: accepted(load) >= SIGNUPS // 2, 120, 0.2, "half the signups")
        stack.env[VERSIONS_SETTING] = "[2]"  # every process started from now on: v2 only
        roll(stack, "accounts-web")
        switched_at = time.time()
        load.join()
        assert load.running is False
        done = time.monotonic()
        figures = settle(stack, scenario, done, expected_dlq=0)
        assert figures.signups == SIGNUPS
        assert (figures.lost, figures.duplicated) == (0, 0)

        [(events, v2_copies, v1_copies, v1_alone)] = stack.query(
            "accounts",
            "SELECT count(DISTINCT event_id), count(*) FILTER (WHERE version = 2),"
            " count(*) FILTER (WHERE version = 1),"
            " count(*) FILTER (WHERE version = 1 AND NOT EXISTS (SELECT 1 FROM outbox v2"
            "   WHERE v2.event_id = outbox.event_id AND v2.version = 2))"
            " FROM outbox WHERE event_type = 'UserSignedUp'",
        )
        [(late_v1,)] = stack.query(
            "accounts",
            "SELECT count(*) FROM outbox WHERE version = 1 AND created_at > to_timestamp(:at)",
            at=switched_at + 1.0,
        )
        [(unsent,)] = stack.query("accounts", "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        print(
            f"{scenario}: {events} events, {v2_copies} v2 copies, {v1_copies} v1 copies "
            f"(window closed after {v1_copies} signups), {load.retries} request retries"
        )
        assert events == v2_copies == SIGNUPS  # every signup went out as v2
        assert 0 < v1_copies < SIGNUPS  # v1 beside it during the window only
        assert (v1_alone, late_v1, unsent) == (0, 0, 0)
