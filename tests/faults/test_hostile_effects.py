"""Fault scenarios of issue 15 on the effects side: the same user under two event ids, and an
SMTP server that drips one byte every few seconds, then one that never answers.

Each ends like the other fault scenarios: wait for the platform to settle, then every effect of
every signup exactly once (``platform_harness.checks.settle``), plus its own assertions. They
run in ``make faults`` (FAULTS=all), not in the CI subset.
"""

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from platform_harness.checks import settle
from platform_harness.load import Load
from platform_harness.scenarios import publish
from platform_harness.smtp_trap import SmtpTrap
from platform_harness.stack import Stack
from signup_shared.events import Envelope, parse_envelope
from signup_shared.messaging.wire import OutgoingMessage

# Longer than pytest's 300 s default: a settle that times out must report what is missing.
pytestmark = pytest.mark.timeout(600)

USERS = 100
SMTP_DEADLINE_SECONDS = 10.0
SMS_WITHIN_SECONDS = 5.0


@pytest.mark.parametrize("scenario", ["same_user_twice"])
def test_same_user_twice(stack: Stack, scenario: str) -> None:
    """A second ``UserSignedUp`` for each existing user (new event id, another email and
    phone): stats counts each user once, one welcome per user, one space per user."""
    Load(stack.url("accounts", "/signups"), tag=stack.name, count=USERS, rate=50).start().join()
    settle(stack, f"{scenario} (first events)", time.monotonic())
    rows = stack.query(
        "accounts",
        # one row per published version of each event: take one of them
        "SELECT DISTINCT ON (event_id) payload FROM outbox"
        " WHERE event_type = 'UserSignedUp' ORDER BY event_id, version",
    )
    seconds: list[Envelope[Any]] = []
    for n, (payload,) in enumerate(rows):
        first = parse_envelope(payload)
        data = first.data.model_copy(
            update={"email": f"second-{n}-{stack.name}@example.com", "phone": f"+1999{n:07d}"}
        )
        seconds.append(Envelope.wrap(data, producer="accounts", correlation_id=f"second-{n}"))
    assert len(seconds) == USERS
    publish(stack, [OutgoingMessage.from_envelope(e) for e in seconds])
    published = time.monotonic()
    settle(stack, scenario, published)
    time.sleep(5.0)  # a delivery started after its event was acked still has time to show
    figures = settle(stack, scenario, published)
    second_emails = {str(e.data.email) for e in seconds}
    second_phones = {str(e.data.phone) for e in seconds}
    mailed = [m["To"] for m in stack.mail() if m["To"] in second_emails]
    texted = [s["to"] for s in stack.sms() if s["to"] in second_phones]
    [(spaces,)] = stack.query("provisioning", "SELECT count(*) FROM spaces")
    [(provisioned,)] = stack.query(
        "provisioning", "SELECT count(*) FROM outbox WHERE event_type = 'SpaceProvisioned'"
    )
    print(
        f"{scenario}: second_events={len(seconds)} stats_total={figures.stats_total} "
        f"second_emails={len(mailed)} second_sms={len(texted)} spaces={spaces} "
        f"space_events={provisioned}"
    )
    assert (figures.signups, figures.stats_total, figures.lost, figures.duplicated) == (
        USERS,
        USERS,
        0,
        0,
    )
    assert (mailed, texted) == ([], [])
    assert (spaces, provisioned) == (USERS, USERS)


@pytest.mark.parametrize("scenario", ["smtp_drip_and_silent"])
def test_smtp_drip_and_silent(
    make_stack: Callable[..., contextlib.AbstractContextManager[Stack]], scenario: str
) -> None:
    """Notifications' SMTP server drips a byte every 3 s, then never answers, while signups
    with phones flow: each SMS within seconds, no SMTP session beyond its deadline; once the
    server recovers every email is delivered, once."""
    trap = SmtpTrap(mode="relay", drip_every=3.0)
    deadline = str(SMTP_DEADLINE_SECONDS)
    try:
        with make_stack(
            scenario,
            NOTIFICATIONS_SMTP_PORT=str(trap.port),
            NOTIFICATIONS_SMTP_TIMEOUT_SECONDS="5",
            # the total deadline of one SMTP session (both spellings: the setting is new)
            NOTIFICATIONS_SMTP_DEADLINE_SECONDS=deadline,
        ) as stack:
            trap.target = stack.ports["smtp"]
            trap.set_mode("drip")
            load = Load(
                stack.url("accounts", "/signups"), tag=stack.name, count=24, rate=0.5, phone_every=1
            ).start()
            time.sleep(24.0)
            trap.set_mode("silent")
            load.join()
            trap.set_mode("relay")
            recovered = time.monotonic()
            longest = trap.longest("drip", "silent")
            figures = settle(stack, scenario, recovered, timeout=200)
            longest = max(longest, trap.longest("drip", "silent"))
            lateness = sms_lateness(stack, load)
    finally:
        trap.stop()
    stuck = {mode: len(trap.sessions_of(mode)) for mode in ("drip", "silent")}
    print(
        f"{scenario}: signups={figures.signups} emails={figures.emails} sms={figures.sms} "
        f"stuck_sessions={stuck} longest_stuck_session={longest:.1f}s "
        f"(deadline {SMTP_DEADLINE_SECONDS:.0f}s) sms_latest={max(lateness.values()):.1f}s "
        f"settle={figures.settle_seconds:.1f}s"
    )
    assert (figures.lost, figures.duplicated, figures.resent_emails) == (0, 0, 0)
    assert stuck["drip"] >= 1 and stuck["silent"] >= 1, stuck  # both faults were met
    assert longest <= SMTP_DEADLINE_SECONDS + 3.0, longest
    late = {phone: s for phone, s in lateness.items() if s > SMS_WITHIN_SECONDS}
    assert not late, late


def sms_lateness(stack: Stack, load: Load) -> dict[str, float]:
    """Phone -> seconds from the signup's acceptance to its SMS reaching the gateway."""
    received = {
        str(s["to"]): datetime.fromisoformat(str(s["received_at"])).timestamp() for s in stack.sms()
    }
    lateness: dict[str, float] = {}
    for index in range(load.count):
        body = load.body(index)
        phone = body.get("phone")
        if phone is None:
            continue
        assert phone in received, f"no SMS for {phone}"
        lateness[phone] = received[phone] - load.accepted_at[body["email"]]
    return lateness
