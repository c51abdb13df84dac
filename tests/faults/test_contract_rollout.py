"""Fault scenario: ``UserSignedUp`` v1 -> v2 rolled out live (``make faults`` only).

1,000 signups while accounts publishes both versions of every signup (one outbox row per
version, one event id, each on its version's routing key: ``accounts.user_signed_up`` and
``accounts.user_signed_up.v2``), the consumers starting on v1 (``<SERVICE>_USER_SIGNED_UP_VERSION
=1``: their queues bound to the v1 key). Meanwhile each consumer of ``UserSignedUp`` is
restarted with the v2 setting, one after another, as an operator's rollout does: at start it
binds the v2 key, then unbinds the v1 key. Once all read v2, accounts-web is restarted with
``ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS=2`` (the window closes) while the load goes on.
Then the usual settle-and-check: every effect once (one welcome, one space, stats equal to the
truth), no queue left with messages, no dead letter; and the outbox shows the window: every
signup has a v2 copy on the v2 key, v1 copies on the v1 key stop at the switch.
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
CONSUMERS = ("notifications", "provisioning", "stats")  # the readers of UserSignedUp
VERSIONS_SETTING = "ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS"


def read_setting(service: str) -> str:
    return f"{service.upper()}_USER_SIGNED_UP_VERSION"


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
    window = {VERSIONS_SETTING: "1,2", **{read_setting(name): "1" for name in CONSUMERS}}
    with make_stack(scenario, **window) as stack:
        # However long the consumers' restarts take, the last 300 signups wait for the switch
        # of accounts-web, so the window closes while the load runs.
        load = Load(
            stack.url("accounts", "/signups"),
            tag=stack.name,
            count=SIGNUPS,
            rate=RATE,
            pause_before=SIGNUPS - 300,
        )
        load.start()
        for name in CONSUMERS:  # one after another, each while the load runs
            wait_until(lambda: accepted(load) >= 100, 60, 0.2, "the load under way")
            time.sleep(2.0)
            stack.env[read_setting(name)] = "2"  # this consumer, from its restart on: v2
            roll(stack, name)
        wait_until(lambda: accepted(load) >= SIGNUPS // 2, 120, 0.2, "half the signups")
        stack.env[VERSIONS_SETTING] = "2"  # every consumer reads v2: v1 stops
        load.resume.set()
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
        keys = dict(
            stack.query(
                "accounts",
                "SELECT version, array_agg(DISTINCT routing_key) FROM outbox"
                " WHERE event_type = 'UserSignedUp' GROUP BY version",
            )
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
        assert keys == {
            1: ["accounts.user_signed_up"],
            2: ["accounts.user_signed_up.v2"],
            3: ["accounts.user_signed_up.v3"],  # the sealed copy for the history, every signup
        }
