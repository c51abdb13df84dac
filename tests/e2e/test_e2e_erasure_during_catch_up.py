"""A user erased after a replay of the history started (issue 19): the reader gets them redacted.

audit joins late (never deployed while the signups happen: no process, no queue) and catches up
from the first offset of the history, where every signup is kept sealed (``UserSignedUp`` v3).
Its keys URL points at a gate in front of accounts (``platform_harness.keys_gate``) that lets the
first key lookup through and holds the next: audit has then recorded the first batch's users
and waits, mid-replay, with the rest of the history unread. The last user to sign up is erased
now, every holder confirms, and the gate opens. audit asks accounts for that user's key only
after the erasure and gets none: the sealed block stays shut, audit records the user from the
redacted form (the count stays whole), and no database, queue, log or the history (as it is and
unsealed with the keys accounts still answers) holds the user's email, name or phone. The
control: accounts answered a key for every other user, so audit did unseal them.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from kombu import Connection

from audit.bootstrap import queues as audit_queues
from audit.settings import AuditSettings
from platform_harness.erasure_scan import Person, scan
from platform_harness.keys_gate import KeysGate
from platform_harness.stack import Stack, running_stack, wait_until
from signup_shared.messaging import topology

SIGNUPS = 30  # the erased user is the last: sealed near the history's tail
BATCH = "5"  # audit's batch: the first lookup covers a few users, far from the last one


def audit_users(stack: Stack) -> set[uuid.UUID]:
    return {
        uuid.UUID(row[0]) for row in stack.query("audit", "SELECT user_id::text FROM audit_users")
    }


def erasure(stack: Stack, client: httpx.Client, user_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(stack.url("accounts", f"/users/{user_id}"))
    assert response.status_code == 410, response.text
    return dict(response.json()["erasure"])


def test_a_user_erased_during_a_catch_up_reaches_the_late_reader_redacted() -> None:
    began = time.monotonic()
    with (
        KeysGate() as gate,
        running_stack(
            held=("audit",),
            AUDIT_KEYS_URL=gate.url,
            AUDIT_KEYS_TIMEOUT_SECONDS="60",  # a lookup held at the gate is not an outage
            AUDIT_CONSUMER_BATCH_SIZE=BATCH,
            AUDIT_CATCH_UP_MARGIN_SECONDS="0.5",
        ) as stack,
    ):
        gate.upstream = stack.url("accounts", "")
        with Connection(stack.amqp_url) as connection:  # audit was never deployed
            topology.delete(connection, audit_queues(AuditSettings()))
        out = stack.command(
            "accounts-web", "accounts", "keys", "create", "--client", "e2e",
            "--scope", "users:erase", "--scope", "users:read",
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {out.splitlines()[1]}"}
        with httpx.Client(timeout=15, headers=headers) as client:
            with ThreadPoolExecutor(4) as pool:
                kept = list(
                    pool.map(
                        lambda i: stack.signup(client, 9000 + i, phone=True, plan="pro"),
                        range(SIGNUPS - 1),
                    )
                )
            erased = stack.signup(client, 9000 + SIGNUPS, phone=True, plan="team")
            target = uuid.UUID(erased["user_id"])
            wait_until(
                lambda: stack.stats()["total_users"] >= SIGNUPS, 60, 0.2, "every signup published"
            )
            started = time.monotonic()

            stack.programs["audit"].env["AUDIT_CATCH_UP_FROM"] = "first"
            stack.start_process("audit")
            assert gate.waiting.wait(60), "audit's catch-up never asked for a second batch's keys"
            mid_replay = audit_users(stack)
            # audit is mid-replay: it recorded what the first lookup opened and holds the rest
            assert 1 <= len(mid_replay) < SIGNUPS, len(mid_replay)
            assert target not in mid_replay
            assert target not in gate.lookups[0].asked and gate.lookups[0].answered

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

            wait_until(lambda: len(audit_users(stack)) >= SIGNUPS, 60, 0.2, "audit caught up")
            caught_up = time.monotonic()
            status = erasure(stack, client, target)
        recorded = audit_users(stack)
        assert recorded == {uuid.UUID(u["user_id"]) for u in [*kept, erased]}

        asking = [lookup for lookup in gate.lookups if target in lookup.asked]
        assert asking, "audit never asked for the erased user's key"
        assert all(lookup.status == 200 and target not in lookup.answered for lookup in asking)
        assert all(gate.lookups.index(lookup) > 0 for lookup in asking)  # only after the erasure
        answered = set().union(*(lookup.answered for lookup in gate.lookups))
        assert answered == {uuid.UUID(u["user_id"]) for u in kept}  # the others were unsealed

        assert status["status"] == "complete" and not status["waiting_for"], status
        found = scan(stack, [Person.of(erased)], stack.keys_file.read_text().strip())
        assert not found.findings, [str(f) for f in found.findings]
        assert not found.stream_findings and not found.unsealed_findings, found.line()
        assert found.sealed >= SIGNUPS and found.unsealed == SIGNUPS - 1, found.line()
        queues = stack.queues()
        assert queues["audit.user_signed_up.dlq"] == 0
        print(
            f"\nerasure during catch-up: {len(mid_replay)} of {SIGNUPS} users recorded when the "
            f"erasure was sent; erasure complete after {erased_at - started:.1f} s from audit's "
            f"start; caught up {caught_up - erased_at:.1f} s after the gate opened; "
            f"{len(gate.lookups)} key lookups; scan {found.line()}; "
            f"whole test {time.monotonic() - began:.1f} s"
        )
