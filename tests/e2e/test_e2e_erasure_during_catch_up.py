"""A user erased after a replay of the history started (issue 19): the reader gets them redacted.

On the session's stack, audit is redeployed from nothing (process stopped, queues deleted, its
database emptied), so it joins late and catches up from the first offset of the history, where
every signup of the session is kept sealed (``UserSignedUp`` v3). Its keys URL points at a gate
in front of accounts (``platform_harness.keys_gate``) that lets the first key lookup through and
holds the next: audit has then recorded the first batch's users and waits, mid-replay, with the
rest of the history unread. The last user to sign up is erased now, every holder confirms, and
the gate opens. audit asks accounts for that user's key only after the erasure and gets none:
the sealed block stays shut, audit records the user from the redacted form (its count stays
whole), and no database, queue, log or the history (as it is and unsealed with the keys accounts
still answers) holds the user's email, name or phone. The control: accounts answered a key for
each of the other users signed up here, so audit did unseal them. audit is then restarted as it
was (live, accounts' own keys URL).
"""

import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from kombu import Connection

from audit.bootstrap import queues as audit_queues
from audit.settings import AuditSettings
from platform_harness.erasure_scan import Person, scan
from platform_harness.keys_gate import KeysGate
from platform_harness.stack import Stack, wait_until
from signup_shared.messaging import topology

SIGNUPS = 20  # the erased user is the last: sealed at the history's tail
LATE_AUDIT = {
    "AUDIT_CATCH_UP_FROM": "first",
    "AUDIT_CONSUMER_BATCH_SIZE": "5",  # the first lookup covers a few users only
    "AUDIT_KEYS_TIMEOUT_SECONDS": "60",  # a lookup held at the gate is not an outage
    "AUDIT_CATCH_UP_MARGIN_SECONDS": "0.5",
}


def audit_users(stack: Stack) -> set[uuid.UUID]:
    rows = stack.query("audit", "SELECT user_id::text FROM audit_users")
    return {uuid.UUID(row[0]) for row in rows}


def erasure(stack: Stack, client: httpx.Client, user_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(stack.url("accounts", f"/users/{user_id}"))
    assert response.status_code == 410, response.text
    return dict(response.json()["erasure"])


@pytest.fixture
def late_audit(stack: Stack) -> Iterator[KeysGate]:
    """audit stopped and wiped (as never deployed), to be started by the test with its keys
    behind the gate; restarted as it was afterwards."""
    with KeysGate(stack.url("accounts", "")) as gate:
        stack.signal("audit", signal.SIGTERM)
        with Connection(stack.amqp_url) as connection:
            topology.delete(connection, audit_queues(AuditSettings()))
        stack.execute("audit", "TRUNCATE audit_users, inbox")
        stack.programs["audit"].env.update({**LATE_AUDIT, "AUDIT_KEYS_URL": gate.url})
        try:
            yield gate
        finally:
            gate.open()
            stack.signal("audit", signal.SIGTERM)
            for variable in (*LATE_AUDIT, "AUDIT_KEYS_URL"):
                stack.programs["audit"].env.pop(variable)
            stack.start_process("audit")


def test_a_user_erased_during_a_catch_up_reaches_the_late_reader_redacted(
    stack: Stack, late_audit: KeysGate
) -> None:
    gate = late_audit
    began = time.monotonic()
    before = stack.stats()["total_users"]
    out = stack.command(
        "accounts-web", "accounts", "keys", "create", "--client", "e2e-late-reader",
        "--scope", "users:erase", "--scope", "users:read",
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {out.splitlines()[1]}"}
    with httpx.Client(timeout=15, headers=headers) as client:
        with ThreadPoolExecutor(4) as pool:
            kept = list(
                pool.map(
                    lambda i: stack.signup(client, 9100 + i, phone=True, plan="pro"),
                    range(SIGNUPS - 1),
                )
            )
        erased = stack.signup(client, 9100 + SIGNUPS, phone=True, plan="team")
        target = uuid.UUID(erased["user_id"])
        wait_until(
            lambda: stack.stats()["total_users"] >= before + SIGNUPS, 60, 0.2, "signups published"
        )
        started = time.monotonic()

        stack.start_process("audit")
        assert gate.waiting.wait(60), "audit's catch-up never asked for a second batch's keys"
        held = time.monotonic()
        mid_replay = audit_users(stack)
        # audit is mid-replay: it recorded what the first lookup opened and holds the rest
        assert 1 <= len(mid_replay) < before + SIGNUPS, len(mid_replay)
        assert target not in mid_replay
        assert target not in gate.lookups[0].asked

        response = client.delete(stack.url("accounts", f"/users/{target}"))
        assert response.status_code == 202, response.text
        wait_until(
            lambda: erasure(stack, client, target)["status"] == "complete",
            30,
            0.2,
            "every holder confirmed the erasure",
        )
        erased_at = time.monotonic()
        gate.open()

        ours = {uuid.UUID(u["user_id"]) for u in kept} | {target}
        wait_until(lambda: ours <= audit_users(stack), 60, 0.2, "audit caught up")
        caught_up = time.monotonic()
        status = erasure(stack, client, target)
    assert status["status"] == "complete" and not status["waiting_for"], status

    asking = [i for i, lookup in enumerate(gate.lookups) if target in lookup.asked]
    assert asking, "audit never asked for the erased user's key"
    assert 0 not in asking  # asked only once held past the erasure
    for i in asking:
        assert gate.lookups[i].status == 200 and target not in gate.lookups[i].answered
    answered = set().union(*(lookup.answered for lookup in gate.lookups))
    assert ours - answered == {target}  # the others signed up here were unsealed

    found = scan(stack, [Person.of(erased)], stack.keys_file.read_text().strip())
    assert not found.findings, [str(f) for f in found.findings]
    assert not found.stream_findings and not found.unsealed_findings, found.line()
    assert found.sealed >= before + SIGNUPS, found.line()
    assert stack.queues()["audit.user_signed_up.dlq"] == 0
    print(
        f"\nerasure during catch-up: audit had {len(mid_replay)} of {before + SIGNUPS} users "
        f"when held at the gate ({held - started:.1f} s after its start); erasure complete "
        f"{erased_at - held:.1f} s later; caught up {caught_up - erased_at:.1f} s after the "
        f"gate opened; {len(gate.lookups)} key lookups; {found.line()}; "
        f"test {time.monotonic() - began:.1f} s (signups {started - began:.1f} s)"
    )
