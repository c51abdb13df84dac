"""Erasures through faults: 200 signups, 50 erasures while the notifications and provisioning
consumers are SIGKILLed (the platform under supervisord, which restarts them, as `make run`
does) and the broker restarts.

Then every erasure completes (``GET /users/{id}``: 410, status complete), every user not erased
has each effect exactly once (one email, one SMS, one space, an active subscription), no erased
user has a space or more than one email or SMS (a racing erasure may come after the send), stats
count all 200 signups, and no database, queue, dead-letter queue or process log of the platform
holds an erased user's email, name or phone (``platform_harness.erasure_scan``).
Runs under ``make faults`` (FAULTS=all) only: conftest skips it in the CI subset.
"""

import subprocess
import time
from collections import Counter
from typing import Any

import httpx

from platform_harness.checks import Truth, email_recipients
from platform_harness.erasure_scan import Person, Scan, api_key, scan, scan_databases, scan_queues
from platform_harness.load import Load
from platform_harness.stack import Stack, running_stack, wait_until
from signup_contracts.amqp import HISTORY_STREAM

SIGNUPS, ERASURES, RATE = 200, 50, 40.0
TARGETS = list(range(1, SIGNUPS, SIGNUPS // ERASURES))  # 1, 5, 9, ...: 50 signups to erase
KILLED = ("notifications", "provisioning")
# As the other fault stacks (tests/faults/conftest.py STACK_ENV): pending sends swept soon.
STACK_ENV = {
    "NOTIFICATIONS_SWEEP_INTERVAL_SECONDS": "5",
    "NOTIFICATIONS_SWEEP_GRACE_SECONDS": "10",
}


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=180)


def kill(stack: Stack, *names: str) -> None:
    """SIGKILL the programs; supervisord restarts them (as consumers_killed_2_each does)."""
    for name in names:
        pid = stack.program_pid(name)
        assert pid is not None, f"{name} is not running"
        stack.kill_pid(pid)


def sigkills_seen(stack: Stack) -> int:
    return stack.log("supervisord").count("(terminated by SIGKILL; not expected)")


class Eraser:
    """Erases the target signups in order, each as soon as its signup is accepted."""

    def __init__(self, stack: Stack, load: Load) -> None:
        self.stack, self.load = stack, load
        self.client = httpx.Client(
            timeout=10, headers={"Authorization": f"Bearer {api_key(stack, 'users:erase')}"}
        )
        self.ids: dict[int, str] = {}  # signup index -> user id, erased
        self.asked_at: dict[str, float] = {}

    def erase_up_to(self, count: int, timeout: float = 120) -> None:
        def step() -> bool:
            for index in TARGETS[len(self.ids) : count]:
                email = self.load.body(index)["email"]
                if email not in self.load.accepted:
                    return False
                self.erase(index, email)
            return len(self.ids) >= count

        wait_until(step, timeout, 0.05, f"{count} erasures issued")

    def erase(self, index: int, email: str) -> None:
        [(user_id,)] = self.stack.query(
            "accounts", "SELECT id FROM users WHERE email = :e", e=email
        )
        response = self.client.delete(self.stack.url("accounts", f"/users/{user_id}"))
        assert response.status_code == 202, response.text
        self.ids[index] = str(user_id)
        self.asked_at[str(user_id)] = time.monotonic()


def erasure_statuses(stack: Stack, reader: str, user_ids: list[str]) -> dict[str, Any]:
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {reader}"}) as client:
        answers = {u: client.get(stack.url("accounts", f"/users/{u}")) for u in user_ids}
    return {
        u: a.json()["erasure"]["status"] if a.status_code == 410 else a.status_code
        for u, a in answers.items()
    }


def problems(stack: Stack, load: Load, erased: dict[int, str]) -> tuple[list[str], Counter[str]]:
    """What is still wrong with the effects, and the counts of lost / duplicated effects."""
    truth = Truth.read(stack)
    emails, sms = email_recipients(stack), Counter(s["to"] for s in stack.sms())
    spaces = Counter(stack.spaces())
    ids = {u["email"]: user_id for user_id, u in truth.users.items() if u["email"]}
    wrong: list[str] = []
    tally: Counter[str] = Counter()
    for index in range(SIGNUPS):
        body = load.body(index)
        if index in erased:
            user_id = erased[index]
            effects = [("space", spaces[user_id], 0, 0)]
            effects += [("email", emails[body["email"]], 0, 1), ("sms", sms[body["phone"]], 0, 1)]
        else:
            user_id = ids.get(body["email"], "?")
            active = int(truth.users.get(user_id, {}).get("status") == "active")
            effects = [("email", emails[body["email"]], 1, 1), ("sms", sms[body["phone"]], 1, 1)]
            effects += [("space", spaces[user_id], 1, 1), ("active", active, 1, 1)]
        for what, have, least, most in effects:
            if have < least:
                tally["lost"] += 1
                wrong.append(f"{index}: {what} missing")
            elif have > most:
                tally["duplicated"] += have - most
                wrong.append(f"{index}: {what} x{have}")
    stats = stack.stats()
    if stats["total_users"] != SIGNUPS:
        wrong.append(f"stats total_users={stats['total_users']} != {SIGNUPS}")
    plans = Counter(u["plan"] for u in truth.users.values())
    if stats["signups_per_plan"] != {p: plans[p] for p in ("free", "pro", "team")}:
        wrong.append(f"stats signups_per_plan={stats['signups_per_plan']} != {dict(plans)}")
    kept = ("events.unrouted", HISTORY_STREAM)
    busy = {
        q: n for q, n in stack.queues().items() if n and not q.endswith(".dlq") and q not in kept
    }
    if busy:
        wrong.append(f"queues not empty: {busy}")
    return wrong, tally


def test_erasures_complete_through_consumer_kills_and_a_broker_restart() -> None:
    with running_stack(supervised=True, start_timeout=120, **STACK_ENV) as stack:
        reader = api_key(stack, "users:read")
        load = Load(
            stack.url("accounts", "/signups"),
            tag=stack.name,
            count=SIGNUPS,
            rate=RATE,
            phone_every=1,
        )
        eraser = Eraser(stack, load)
        load.start()
        # Erasures racing their signups' processing while the holders are killed and restart.
        eraser.erase_up_to(8)
        kill(stack, "notifications")
        eraser.erase_up_to(16)
        kill(stack, "provisioning")
        load.join()
        eraser.erase_up_to(25)
        stack.wait_ready(120)
        time.sleep(6.0)  # past supervisord's startsecs (5 s): a kill now is not a failed start
        kill(stack, *KILLED)
        # Erasures while the broker is down; the holders killed again once it is back.
        sh("rabbitmqctl", "stop_app")
        try:
            eraser.erase_up_to(40)
            time.sleep(3.0)
        finally:
            sh("rabbitmqctl", "start_app")
            sh("rabbitmqctl", "await_startup")
        stack.wait_ready(120)
        time.sleep(6.0)
        eraser.erase_up_to(45)
        kill(stack, *KILLED)
        eraser.erase_up_to(ERASURES)
        issued = time.monotonic()
        eraser.client.close()

        erased = list(eraser.ids.values())
        wait_until(
            lambda: set(erasure_statuses(stack, reader, erased).values()) == {"complete"},
            240,
            1.0,
            "every erasure complete",
        )
        completed = time.monotonic() - issued
        state: dict[str, Any] = {}

        def settled() -> bool:
            state["wrong"], state["tally"] = problems(stack, load, eraser.ids)
            return not state["wrong"]

        try:
            wait_until(settled, 180, 1.0, "every effect once, every queue empty")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {state['wrong'][:10]}") from None
        settle = time.monotonic() - issued
        people = [Person.of(load.body(index)) for index in eraser.ids]
        keys = api_key(stack, "keys:read", client="faults-history")
        found = scan(stack, people, keys)
        dlq = {q: n for q, n in stack.queues().items() if q.endswith(".dlq") and n}
        mailed = email_recipients(stack)
        emailed = sum(1 for p in people if mailed[p.email])  # the send came before the erasure
        print(
            f"erasure_faults: signups={SIGNUPS} erased={len(erased)} "
            f"complete={len(erased)} erased_emailed_before={emailed} kept={SIGNUPS - len(erased)} "
            f"lost={state['tally']['lost']} duplicated={state['tally']['duplicated']} "
            f"stats_total={stack.stats()['total_users']} dlq={sum(dlq.values())} "
            f"complete_after={completed:.1f}s settle={settle:.1f}s {found.line()}"
        )
        assert not found.findings, [str(f) for f in found.findings[:20]]
        # The history holds every signup sealed: nobody in clear, and the erased users' keys
        # are gone, so unsealing with every key accounts still has finds none of them.
        assert not found.stream_findings, [str(f) for f in found.stream_findings[:20]]
        assert not found.unsealed_findings, [str(f) for f in found.unsealed_findings[:20]]
        assert found.sealed >= SIGNUPS and found.unsealed >= SIGNUPS - len(erased)
        assert not dlq, dlq
        assert sigkills_seen(stack) == 6, "supervisord saw every kill"
        assert found.tables and found.files and found.queues
        assert_the_scan_sees(stack, [Person.of(load.body(i)) for i in (0, 2)], keys)


def assert_the_scan_sees(stack: Stack, kept: list[Person], keys: str) -> None:
    """The same scan finds users not erased, in accounts, in the history unsealed with their
    keys from accounts, and in a dead letter planted for it."""
    control = Scan()
    scan_databases(stack, kept, control)
    assert {(f.person, f.where) for f in control.findings} >= {
        (p, "database accounts.users") for p in kept
    }
    unsealed = Scan()
    scan_queues(stack, kept, unsealed, keys)
    assert {f.person for f in unsealed.unsealed_findings} == set(kept)
    assert {f.field for f in unsealed.unsealed_findings} == {"email", "full_name", "phone"}
    queue = next(q for q in stack.queues() if q.endswith(".dlq"))
    stack._management(
        "POST",
        f"/api/exchanges/{stack.name}/amq.default/publish",
        {
            "properties": {},
            "routing_key": queue,
            "payload": kept[0].phone or "",
            "payload_encoding": "string",
        },
    )
    control = Scan()
    wait_until(lambda: stack.queues()[queue], 10, 0.2, "the planted dead letter")
    scan_queues(stack, kept, control)
    assert [(f.where, f.field) for f in control.findings] == [(f"queue {queue}", "phone")]
