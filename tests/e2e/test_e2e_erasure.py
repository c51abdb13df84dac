"""Erasure over the whole stack: signups, erasures (some racing their signup's processing),
every holder confirms, and no platform database, queue, dead-letter queue, process log or the
history stream (as it is, and unsealed with every key accounts still answers) keeps an erased
user's email, name or phone (``platform_harness.erasure_scan``); the same unsealing finds the
users not erased (crypto-shredding: docs/erasure.md)."""

from typing import Any

import httpx
import pytest

from platform_harness.erasure_scan import Person, api_key, scan, table_texts
from platform_harness.stack import Stack, wait_until

pytestmark = pytest.mark.e2e
SIGNUPS, ERASED = 12, (0, 1, 5, 9)  # 0 and 1 are erased right after their signup (racing)


def test_erased_users_leave_no_personal_data_and_every_holder_confirms(stack: Stack) -> None:
    before = stack.stats()
    key = api_key(stack, "users:erase")
    reader = api_key(stack, "users:read")
    users: list[dict[str, Any]] = []
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(SIGNUPS):
            users.append(stack.signup(client, 7000 + i, phone=True, plan="pro"))
            if i in ERASED[:2]:
                erased = client.delete(stack.url("accounts", f"/users/{users[i]['user_id']}"))
                assert erased.status_code == 202, erased.text
        wait_until(
            lambda: len(stack.spaces()) >= SIGNUPS - 2, timeout=60, message="signups processed"
        )
        for i in ERASED[2:]:
            response = client.delete(stack.url("accounts", f"/users/{users[i]['user_id']}"))
            assert response.status_code == 202, response.text
        again = client.delete(stack.url("accounts", f"/users/{users[ERASED[2]]['user_id']}"))
        assert again.status_code == 200

    def complete() -> bool:
        with httpx.Client(headers={"Authorization": f"Bearer {reader}"}) as read:
            answers = [
                read.get(stack.url("accounts", f"/users/{users[i]['user_id']}")) for i in ERASED
            ]
        return all(
            a.status_code == 410 and a.json()["erasure"]["status"] == "complete" for a in answers
        )

    wait_until(complete, timeout=90, interval=0.5, message="every erasure confirmed")
    erased = [users[i] for i in ERASED]
    kept = [u for i, u in enumerate(users) if i not in ERASED]
    keys = api_key(stack, "keys:read", client="e2e-history")
    found = scan(stack, [Person.of(user) for user in erased], keys)  # databases, queues, logs
    assert not found.findings, [str(f) for f in found.findings]
    assert not found.stream_findings and not found.unsealed_findings, found.line()
    assert found.sealed >= SIGNUPS  # every signup is in the history, sealed
    control = scan(stack, [Person.of(user) for user in kept], keys)  # the unseal sees data
    print(f"\ne2e erasure: erased {found.line()}\ne2e erasure: kept {control.line()}")
    assert {f.person for f in control.unsealed_findings} == {Person.of(u) for u in kept}
    assert not control.stream_findings  # and nobody's data is in clear in the history
    accounts = "\n".join(row for rows in table_texts(stack, "accounts").values() for row in rows)
    assert all(u["email"] in accounts for u in kept)
    assert not set(stack.spaces()) & {u["user_id"] for u in erased}
    assert {u["user_id"] for u in kept} <= set(stack.spaces())
    wait_until(
        lambda: stack.stats()["total_users"] - before["total_users"] == SIGNUPS,
        timeout=30,
        message="stats count every signup, erased or not",
    )
