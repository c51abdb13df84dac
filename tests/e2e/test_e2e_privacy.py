"""No personal data in logs or dead-letter headers, whatever fails on the way (issue 7.4).

The session's stack (its retry delays and notification sweep short: tests/e2e/conftest.py) runs
the signup flow with failures injected: the SMS gateway refuses some recipients (400), the SMTP
server is down for a while, a poison message and an event the database cannot store (a NUL in
the name: the SQL error text would carry the bound parameters) are published, and hostile
requests reach the API. Every value is distinctive, so finding any
of them in the logs of any process or in any dead-letter header is a leak.
"""

import json
import random
import signal
import string
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from platform_harness.scenarios import LIVE_SIGNED_UP_KEY, live
from platform_harness.stack import Stack, wait_until
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import user_signed_up

CONSUMER_QUEUES = (
    "notifications.user_signed_up",
    "provisioning.user_signed_up",
    "stats.user_signed_up",
)


@dataclass(frozen=True)
class Person:
    """Distinctive personal data: any of ``needles`` in a log or header is a leak."""

    email: str
    full_name: str
    phone: str

    @classmethod
    def make(cls, token: str, index: int) -> "Person":
        digits = "".join(random.choices(string.digits, k=7))
        surname = f"{token.capitalize()}{string.ascii_lowercase[index]}"
        return cls(
            email=f"zed.{token}.{index}@example.com",
            full_name=f"Quorra {surname} Vexmoor",
            phone=f"+1555{digits}",
        )

    @property
    def needles(self) -> list[str]:
        local = self.email.split("@")[0]
        surname = self.full_name.split()[1]
        return [self.email, local, self.full_name, surname, self.phone, self.phone[1:]]

    def body(self, plan: str = "pro", *, phone: bool = True) -> dict[str, Any]:
        body = {"email": self.email, "full_name": self.full_name, "plan": plan}
        return {**body, "phone": self.phone} if phone else body


def sign_up(client: httpx.Client, stack: Stack, body: dict[str, Any], **headers: str) -> int:
    return client.post(stack.url("accounts", "/signups"), json=body, headers=headers).status_code


def publish(stack: Stack, *messages: OutgoingMessage) -> None:
    publisher = ConfirmingPublisher(stack.amqp_url)
    try:
        publisher.publish_batch(list(messages))
    finally:
        publisher.close()


def dead_letter_headers(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    return {
        queue: [m["properties"].get("headers", {}) for m in stack.dead_letters(queue)]
        for queue in stack.queues()
        if queue.endswith(".dlq")
    }


def log_lines(stack: Stack) -> list[tuple[str, int, str]]:
    lines = []
    for path in sorted((stack.root / "var" / "log").glob("*.log")):
        text = path.read_text(errors="replace")
        lines += [(path.name, n, line) for n, line in enumerate(text.splitlines(), start=1)]
    return lines


def settled(stack: Stack) -> bool:
    """Nothing left to do: every main and retry queue is empty."""
    depths = stack.queues()
    return all(count == 0 for queue, count in depths.items() if not queue.endswith(".dlq"))


def test_no_personal_data_in_any_log_line_or_dead_letter_header(stack: Stack) -> None:
    token = "".join(random.choices(string.ascii_lowercase, k=10))
    people = [Person.make(token, i) for i in range(14)]
    refused, delivered, mail_down, poison, unstorable, hostile, traced, unknown = (
        people[0:2],
        people[2:4],
        people[4:6],
        people[6],
        people[7],
        people[8:12],
        people[12],
        people[13],
    )

    # The SMS gateway refuses two recipients for good (400): failed notifications.
    stack.sms_faults({"fail_recipients": {person.phone: 400 for person in refused}})
    with httpx.Client(timeout=10) as client:
        for person in [*refused, *delivered]:
            assert sign_up(client, stack, person.body()) == 201

        # SMTP down for a while: retried, maybe exhausted and dead-lettered.
        stack.signal("smtp-sink", signal.SIGTERM)
        for person in mail_down:
            assert sign_up(client, stack, person.body(phone=False)) == 201
        time.sleep(3)
        stack.restart("smtp-sink")

        # Hostile requests: the answers may vary, the logs must not carry what they held.
        nul_name = {**hostile[0].body(), "full_name": f"{hostile[0].full_name}\x00"}
        sign_up(client, stack, nul_name)
        sign_up(client, stack, hostile[1].body(), **{"X-Correlation-ID": hostile[1].email})
        sign_up(client, stack, hostile[2].body(), **{"X-Correlation-ID": "x" * 300})
        assert sign_up(client, stack, hostile[3].body()) == 201
        assert sign_up(client, stack, {**hostile[3].body(), "plan": "team"}) == 409
        sign_up(client, stack, {**hostile[3].body(), "email": hostile[3].full_name})

    # A poison message full of personal data, and an event the database cannot store.
    bad_plan = json.loads(
        user_signed_up(email=poison.email, full_name=poison.full_name, phone=poison.phone).to_json()
    )
    bad_plan["data"]["plan"] = poison.full_name
    poison_message = OutgoingMessage(
        json.dumps(bad_plan).encode(),
        LIVE_SIGNED_UP_KEY,
        f"poison-{uuid.uuid4()}",
        "UserSignedUp",
        1,
        str(uuid.uuid4()),
        "accounts",
    )
    nul_event = user_signed_up(
        email=unstorable.email, full_name=f"{unstorable.full_name}\x00", phone=unstorable.phone
    )
    # A hostile publisher's free text: personal data in the correlation id (bound to every log
    # line of the message, and of the events it causes) and in the event type (error text).
    traced_event = user_signed_up(
        email=traced.email, full_name=traced.full_name, phone=traced.phone
    ).model_copy(update={"correlation_id": f"trace of {traced.email} at {traced.phone}"})
    unknown_type = json.loads(user_signed_up().to_json())
    unknown_type["type"] = f"SignupOf<{unknown.email}>{unknown.phone}"
    unknown_message = OutgoingMessage(
        json.dumps(unknown_type).encode(),
        LIVE_SIGNED_UP_KEY,
        f"unknown-{uuid.uuid4()}",
        "UserSignedUp",
        1,
        str(uuid.uuid4()),
        "accounts",
    )
    publish(
        stack,
        poison_message,
        unknown_message,
        live(OutgoingMessage.from_envelope(nul_event)),
        live(OutgoingMessage.from_envelope(traced_event)),
    )

    def dead_message_ids(queue: str) -> set[str]:
        return {m["properties"].get("message_id") for m in stack.dead_letters(f"{queue}.dlq")}

    def expected_dead_letters() -> bool:
        return (
            all(
                {poison_message.message_id, unknown_message.message_id} <= dead_message_ids(queue)
                for queue in CONSUMER_QUEUES
            )
            and str(nul_event.id) in dead_message_ids("notifications.user_signed_up")
            and str(traced_event.data.user_id) in stack.spaces()
        )

    try:
        wait_until(expected_dead_letters, 90, 0.5, "poison and unstorable events dead-lettered")
        wait_until(lambda: settled(stack), 90, 0.5, "every main and retry queue empty")
        time.sleep(2)  # last log lines of the sweep and the consumers
        wait_until(lambda: settled(stack), 30, 0.5, "still settled")
    except TimeoutError as exc:
        depths = {queue: count for queue, count in stack.queues().items() if count}
        warnings = [line for line in log_lines(stack) if '"level":"info"' not in line[2]]
        raise AssertionError(
            f"{exc}; queues {depths}; log lines above INFO:\n"
            + "\n".join(f"{name}:{number}: {line[:300]}" for name, number, line in warnings[-60:])
        ) from exc

    headers = dead_letter_headers(stack)
    lines = log_lines(stack)
    # The collection is not empty: the failures happened and were logged and dead-lettered.
    assert any("injected status 400" in line for _, _, line in lines)
    assert any("notification.failed" in line for _, _, line in lines)
    assert sum(len(found) for found in headers.values()) >= 7
    assert all(h.get("x-signup-error-type") for found in headers.values() for h in found), headers

    needles = {needle for person in people for needle in person.needles}
    leaks = [
        f"{name}:{number}: {line[:400]}"
        for name, number, line in lines
        if any(needle in line for needle in needles)
    ]
    leaks += [
        f"{queue} header {key}: {value!r}"[:500]
        for queue, found in headers.items()
        for h in found
        for key, value in h.items()
        if any(needle in json.dumps(value, default=str) for needle in needles)
    ]
    assert not leaks, "personal data found:\n" + "\n".join(leaks[:40])
    for queue, found in headers.items():
        for h in found:
            print(f"{queue}: {h.get('x-signup-error-type')}: {h.get('x-signup-error-message')}")
    print(
        f"\n{len(lines)} log lines in {len(list(Path(stack.root, 'var', 'log').glob('*.log')))}"
        f" files and {sum(len(found) for found in headers.values())} dead letters: "
        f"none of {len(needles)} personal values found"
    )
