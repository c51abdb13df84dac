"""Erasure over the whole stack at the scale of issue 19: 200 signups, 50 erasures.

audit is redeployed from nothing first (process stopped, queues deleted, its database emptied),
so it joins late and catches up from the first offset of the history, where every signup is
kept sealed (``UserSignedUp`` v3). Then

1. 200 users sign up (8 at a time, every one with a phone); 20 of them are erased as soon as
   their signup is accepted, racing its processing by notifications, provisioning and stats;
2. audit starts its catch-up with its keys URL behind a gate in front of accounts
   (``platform_harness.keys_gate``) that lets the first key lookup through and holds the next:
   audit is provably mid-replay (it recorded the first batch's users and holds the rest of the
   history). 30 more users, signed up late (so not in the first batch), are erased now; once
   every holder confirmed them, the gate opens. audit asks for their keys only after their
   erasure and gets none: it records them from the redacted form (its count stays whole);
3. every erasure is complete, every other user has their effects (email, SMS, space, active
   subscription, audit record), stats count all 200 signups by plan, and one scan of every
   database, queue and dead-letter queue, process log and the history (as it is, and unsealed
   with every key accounts still answers; ``platform_harness.erasure_scan``) finds none of the
   erased users' email, name or phone, while the same scan sees the 150 others (in accounts, and
   in the unsealed history: crypto-shredding, docs/erasure.md).

audit is restarted as it was afterwards (live, accounts' own keys URL).
"""

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from kombu import Connection

from audit.bootstrap import queues as audit_queues
from audit.settings import AuditSettings
from platform_harness.checks import email_recipients
from platform_harness.erasure_scan import FIELDS, Person, scan
from platform_harness.keys_gate import KeysGate
from platform_harness.programs import JANITOR
from platform_harness.stack import Stack, wait_until
from signup_shared.messaging import topology

pytestmark = pytest.mark.e2e
SIGNUPS, FIRST_INDEX = 200, 7000  # the other e2e modules use 0..299, 700_000+ and 900_001+
PLANS = ("free", "pro", "team")
RACING = frozenset(range(0, SIGNUPS, 10))  # 20 erased as soon as their signup is accepted
# 30 erased while audit's catch-up is held mid-replay: signed up in the second half, so none is
# in the first lookup (a batch of the history's first events)
DURING_REPLAY = frozenset(i for i in range(SIGNUPS // 2, SIGNUPS) if i % 10 in (3, 7, 9))
DLQ = "notifications.user_signed_up.dlq"  # where dead letters of erased users are planted
LATE_AUDIT = {
    "AUDIT_CATCH_UP_FROM": "first",
    "AUDIT_CONSUMER_BATCH_SIZE": "10",  # the first lookup covers a few users only
    "AUDIT_KEYS_TIMEOUT_SECONDS": "60",  # a lookup held at the gate is not an outage
    "AUDIT_CATCH_UP_MARGIN_SECONDS": "0.5",
}


def audit_users(stack: Stack) -> set[uuid.UUID]:
    rows = stack.query("audit", "SELECT user_id::text FROM audit_users")
    return {uuid.UUID(row[0]) for row in rows}


def erasure_statuses(stack: Stack, client: httpx.Client, users: list[uuid.UUID]) -> list[Any]:
    """Each user's erasure (``GET /users/{id}``: 410 and the erasure), or the status code."""
    answers = [client.get(stack.url("accounts", f"/users/{user}")) for user in users]
    return [a.json()["erasure"] if a.status_code == 410 else a.status_code for a in answers]


def complete(stack: Stack, client: httpx.Client, users: list[uuid.UUID]) -> bool:
    statuses = erasure_statuses(stack, client, users)
    return all(isinstance(s, dict) and s["status"] == "complete" for s in statuses)


def erase(stack: Stack, client: httpx.Client, user: uuid.UUID) -> None:
    response = client.delete(stack.url("accounts", f"/users/{user}"))
    assert response.status_code == 202, response.text


def dead_letter(user: dict[str, Any]) -> dict[str, Any]:
    """A ``UserSignedUp`` v2 (personal data in clear) of ``user``, as a dead letter published
    through the management API (the default exchange, to its DLQ by name)."""
    data = {key: user[key] for key in ("user_id", "email", "full_name", "phone", "plan")}
    body = {"id": str(uuid.uuid4()), "type": "UserSignedUp", "version": 2, "data": data}
    headers = {"x-signup-failure-kind": "permanent", "x-signup-service": "notifications"}
    return {
        "properties": {"message_id": body["id"], "headers": headers},
        "payload": json.dumps(body),
        "payload_encoding": "string",
    }


class JanitorRun:
    """Dead letters planted in ``dlq``, then the dlq janitor restarted (SIGTERM: it exits 0; its
    first pass runs at start): :meth:`result` waits until that pass dropped the erased user's
    and put the other one back, and returns what its log says of the pass."""

    def __init__(self, stack: Stack, dlq: str, planted: list[dict[str, Any]]) -> None:
        self.stack, self.dlq = stack, dlq
        self.before = stack.queues()[dlq]
        for user in planted:
            message = {**dead_letter(user), "routing_key": dlq}
            stack._management("POST", f"/api/exchanges/{stack.name}/amq.default/publish", message)
        depth = self.before + len(planted)
        wait_until(lambda: stack.queues()[dlq] == depth, 10, 0.2, "the planted dead letters")
        stack.signal(JANITOR, signal.SIGTERM)
        assert stack.processes[JANITOR].returncode == 0, stack.log(JANITOR)[-2000:]
        self.logged = len(stack.log(JANITOR))
        self.started = time.monotonic()
        stack.start_process(JANITOR)

    def result(self) -> str:
        def passed() -> str:
            lines = self.stack.log(JANITOR)[self.logged :].splitlines()
            return next((line for line in lines if "drop-erased --all done" in line), "")

        line = wait_until(passed, 30, 0.2, "a pass of the restarted dlq janitor")
        took = time.monotonic() - self.started
        assert f"drop-erased {self.dlq}: " in self.stack.log(JANITOR)[self.logged :], line
        # the kept user's is back in the DLQ (the management API's counts lag a few seconds)
        wait_until(
            lambda: self.stack.queues()[self.dlq] == self.before + 1, 15, 0.2, f"kept: {line}"
        )
        return f"{line.split(' ', 1)[1]} (restart to pass {took:.1f} s)"


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


def test_50_of_200_users_erased_racing_their_signup_or_a_replay_leave_no_personal_data(
    stack: Stack, late_audit: KeysGate
) -> None:
    gate = late_audit
    began = time.monotonic()
    before = stack.stats()
    before_users = before["total_users"]  # every user of the session's stack so far
    out = stack.command(
        "accounts-web", "accounts", "keys", "create", "--client", "e2e-erasure",
        "--scope", "users:erase", "--scope", "users:read",
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {out.splitlines()[1]}"}
    with httpx.Client(timeout=15, headers=headers) as client:

        def sign_up(i: int) -> dict[str, Any]:
            user = stack.signup(client, FIRST_INDEX + i, phone=True, plan=PLANS[i % 3])
            if i in RACING:  # its signup is still being processed
                erase(stack, client, uuid.UUID(user["user_id"]))
            return user

        with ThreadPoolExecutor(8) as pool:
            users = list(pool.map(sign_up, range(SIGNUPS)))
        signed_up = time.monotonic()
        ids = [uuid.UUID(u["user_id"]) for u in users]
        again = client.delete(stack.url("accounts", f"/users/{ids[min(RACING)]}"))
        assert again.status_code == 200, again.text  # one erasure, asked twice
        wait_until(
            lambda: stack.stats()["total_users"] >= before["total_users"] + SIGNUPS,
            60, 0.2, "signups published",
        )  # fmt: skip

        started = time.monotonic()
        stack.start_process("audit")
        assert gate.waiting.wait(60), "audit's catch-up never asked for a second batch's keys"
        held = time.monotonic()
        mid_replay = audit_users(stack)
        late = [ids[i] for i in sorted(DURING_REPLAY)]
        # audit is mid-replay: it recorded what the first lookup opened and holds the rest
        assert 1 <= len(mid_replay) < before_users + SIGNUPS, len(mid_replay)
        assert not set(late) & (mid_replay | gate.lookups[0].asked)
        for user in late:
            erase(stack, client, user)
        wait_until(lambda: complete(stack, client, late), 60, 0.2, "the late erasures confirmed")
        erased_at = time.monotonic()
        gate.open()
        # dead letters in clear of an erased and a kept user (while audit catches up): the dlq
        # janitor drops the first
        kept_last = max(i for i in range(SIGNUPS) if i not in RACING | DURING_REPLAY)
        planted = (min(DURING_REPLAY), kept_last)
        janitor = JanitorRun(stack, DLQ, [users[i] for i in planted])

        wait_until(lambda: set(ids) <= audit_users(stack), 60, 0.2, "audit caught up")
        caught_up = time.monotonic()
        erased_ids = [ids[i] for i in sorted(RACING | DURING_REPLAY)]
        wait_until(lambda: complete(stack, client, erased_ids), 60, 0.2, "every erasure complete")
        statuses = erasure_statuses(stack, client, erased_ids)
    assert all(not s["waiting_for"] for s in statuses), statuses
    erased = {i: users[i] for i in RACING | DURING_REPLAY}
    kept = {i: u for i, u in enumerate(users) if i not in erased}
    assert (len(erased), len(kept)) == (50, 150)

    # audit asked for the late-erased users' keys only once held past their erasure: no key
    for i, lookup in enumerate(gate.lookups):
        if lookup.asked & set(late):
            assert i > 0 and lookup.status == 200 and not lookup.answered & set(late), i
    answered = set().union(*(lookup.answered for lookup in gate.lookups))
    assert set(ids) - answered == set(erased_ids)  # every other user was unsealed
    assert stack.queues()["audit.user_signed_up.dlq"] == 0

    # every other user's effects, none of an erased user's space; stats unchanged by erasure
    emails, sms = email_recipients(stack), Counter(s["to"] for s in stack.sms())
    spaces = set(stack.spaces())
    missing = [
        (i, emails[u["email"]], sms[u["phone"]], u["user_id"] in spaces)
        for i, u in kept.items()
        if (emails[u["email"]], sms[u["phone"]], u["user_id"] in spaces) != (1, 1, True)
    ]
    assert not missing, missing[:10]  # (index, emails, SMS, space) of a user not erased
    assert not spaces & {u["user_id"] for u in erased.values()}
    assert all(emails[u["email"]] <= 1 and sms[u["phone"]] <= 1 for u in erased.values())
    active = stack.query(
        "accounts", "SELECT user_id::text FROM subscriptions WHERE status = 'active'"
    )
    assert {u["user_id"] for u in kept.values()} <= {row[0] for row in active}
    stats = stack.stats()
    assert stats["total_users"] - before["total_users"] == SIGNUPS
    plans = Counter(PLANS[i % 3] for i in range(SIGNUPS))
    assert {
        plan: stats["signups_per_plan"][plan] - before["signups_per_plan"].get(plan, 0)
        for plan in PLANS
    } == plans

    dropped = janitor.result()

    # one scan for all 200: none of the 50 anywhere, the 150 others seen where they should be
    people = {i: Person.of(u) for i, u in enumerate(users)}
    scanned = time.monotonic()
    found = scan(stack, list(people.values()), stack.keys_file.read_text().strip())
    gone = {people[i] for i in erased}
    hits = [f for f in found.findings if f.person in gone]
    assert not hits, [str(f) for f in hits]
    assert not found.stream_findings, [str(f) for f in found.stream_findings[:20]]
    assert not {f.person for f in found.unsealed_findings} & gone, found.line()
    assert {f.person for f in found.unsealed_findings} == {people[i] for i in kept}
    assert {f.person for f in found.findings if f.where == "database accounts.users"} == {
        people[i] for i in kept
    }
    assert found.sealed >= before_users + SIGNUPS, found.line()
    in_dlq = {(f.person, f.field) for f in found.findings if f.where == f"queue {DLQ}"}
    assert in_dlq == {(people[planted[1]], field) for field in FIELDS}  # the queue scan sees
    if stack.queues()[DLQ] == 1:  # only the planted one: no dead letter of another test lost
        stack._management("DELETE", f"/api/queues/{stack.name}/{DLQ}/contents", expect=(204,))
    emailed = sum(1 for u in erased.values() if emails[u["email"]])
    # racing erasures that came before the welcome email was sent: they did race
    before_email = sum(1 for i in RACING if not emails[users[i]["email"]])
    print(
        f"\ne2e erasure: signups={SIGNUPS} erased={len(erased)} (racing={len(RACING)} "
        f"during_replay={len(DURING_REPLAY)}) complete={len(statuses)} kept={len(kept)} "
        f"erased_emailed_before={emailed} racing_erased_before_email={before_email} "
        f"stats_total+={SIGNUPS}; audit had {len(mid_replay)} "
        f"of {before_users + SIGNUPS} users when held ({held - started:.1f} s after its start), "
        f"late erasures complete {erased_at - held:.1f} s later, caught up "
        f"{caught_up - erased_at:.1f} s after the gate opened, {len(gate.lookups)} key lookups; "
        f"erased {found.line().replace('found=', 'found_all=', 1)} found_erased={len(hits)} "
        f"(scan {time.monotonic() - scanned:.1f} s); test {time.monotonic() - began:.1f} s "
        f"(signups {signed_up - began:.1f} s); {dropped}"
    )
