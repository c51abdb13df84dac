"""The whole system through HTTP and the broker: every signup gets each effect exactly once."""

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from platform_harness.scenarios import LIVE_SIGNED_UP_KEY, live
from platform_harness.stack import Stack, wait_until
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import user_signed_up

PLANS = ("free", "pro", "team")
CONSUMER_QUEUES = (
    "notifications.user_signed_up",
    "provisioning.user_signed_up",
    "stats.user_signed_up",
)


def sign_up_many(stack: Stack, start: int, count: int) -> list[dict[str, Any]]:
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
        return list(
            pool.map(
                lambda i: stack.signup(client, i, phone=i % 3 != 0, plan=PLANS[i % 3]),
                range(start, start + count),
            )
        )


def effects_of(stack: Stack, users: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    ours = {u["email"] for u in users}
    phones = {u["phone"] for u in users if "phone" in u}
    user_ids = {u["user_id"] for u in users}
    return {
        "mail": Counter(m["To"] for m in stack.mail() if m["To"] in ours),
        "sms": Counter(s["to"] for s in stack.sms() if s["to"] in phones),
        "spaces": Counter(s for s in stack.spaces() if s in user_ids),
    }


def test_every_signup_gets_one_email_sms_space_activation_and_count(stack: Stack) -> None:
    before = stack.stats()
    started = time.monotonic()
    users = sign_up_many(stack, 0, 300)
    signed_up = time.monotonic()
    with_phone = [u for u in users if "phone" in u]

    def settled() -> bool:
        effects = effects_of(stack, users)
        return (
            len(effects["mail"]) == len(users)
            and len(effects["sms"]) == len(with_phone)
            and len(effects["spaces"]) == len(users)
        )

    wait_until(settled, timeout=90, interval=0.25, message="every effect visible")
    effects = effects_of(stack, users)
    assert set(effects["mail"].values()) == {1}
    assert set(effects["sms"].values()) == {1}
    assert set(effects["spaces"].values()) == {1}

    def all_active() -> bool:
        statuses = stack.query("accounts", "SELECT status FROM subscriptions")
        return sum(1 for (s,) in statuses if s == "active") >= len(users)

    wait_until(all_active, timeout=30, message="every subscription active")
    create_key = ["accounts", "keys", "create", "--client", "e2e-flow", "--scope", "users:read"]
    created = stack.command("accounts-consumer", *create_key)
    key = created.splitlines()[1]  # the key is printed once, on the second line
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as client:
        sample = client.get(stack.url("accounts", f"/users/{users[0]['user_id']}")).json()
    assert sample["status"] == "active"

    expected_plan = Counter(u["plan"] for u in users)

    def stats_match() -> bool:
        now = stack.stats()
        return now["total_users"] - before["total_users"] == len(users) and now[
            "activated_subscriptions"
        ] - before["activated_subscriptions"] == len(users)

    wait_until(stats_match, timeout=30, message="stats equal to the truth")
    after = stack.stats()
    for plan in PLANS:
        assert (
            after["signups_per_plan"][plan] - before["signups_per_plan"][plan]
            == expected_plan[plan]
        )
    print(
        f"\n{len(users)} signups in {signed_up - started:.1f}s; every effect visible "
        f"{time.monotonic() - signed_up:.1f}s after the last signup"
    )


def test_the_welcome_speaks_the_language_the_signup_asked_for(stack: Stack) -> None:
    """Accept-Language at signup -> the v2 event's locale -> the welcome's language; a language
    without a catalog gets English."""
    asked = {"de-DE,de;q=0.9,en;q=0.5": "de", "fr-FR": "en"}
    with httpx.Client(timeout=10) as client:
        users = {
            language: stack.signup(client, 900 + n, phone=True, plan="pro", accept_language=header)
            for n, (header, language) in enumerate(asked.items())
        }
    wanted = {u["email"]: language for language, u in users.items()}

    def mails() -> dict[str, Any]:
        return {m["To"]: m for m in stack.mail() if m["To"] in wanted}

    wait_until(lambda: len(mails()) == len(wanted), timeout=30, message="both welcomes")
    for address, mail in mails().items():
        language = wanted[address]
        assert mail["Content-Language"] == language
        greeting = "Willkommen bei" if language == "de" else "Welcome to"
        assert str(mail["Subject"]).startswith(greeting), mail["Subject"]
    german_phone = users["de"]["phone"]
    wait_until(lambda: any(s["to"] == german_phone for s in stack.sms()), timeout=30, message="SMS")
    [sms] = [s for s in stack.sms() if s["to"] == german_phone]
    assert str(sms["body"]).startswith("Willkommen bei Signup Platform"), sms


def test_the_same_event_published_twice_has_one_effect(stack: Stack) -> None:
    event = user_signed_up(
        email=f"twice-{uuid.uuid4().hex[:6]}@example.com", phone="+15559990001", plan="team"
    )
    before = stack.stats()["total_users"]
    publisher = ConfirmingPublisher(stack.amqp_url)
    publisher.publish_batch([live(OutgoingMessage.from_envelope(event))])
    publisher.publish_batch([live(OutgoingMessage.from_envelope(event))])
    publisher.close()
    user_id = str(event.data.user_id)
    wait_until(lambda: user_id in stack.spaces(), 30, message="space created")
    wait_until(lambda: stack.stats()["total_users"] == before + 1, 30, message="counted")
    wait_until(
        lambda: all(stack.queues().get(q, 0) == 0 for q in CONSUMER_QUEUES),
        30,
        message="queues drained",
    )
    assert [m["To"] for m in stack.mail()].count(event.data.email) == 1
    assert [s["to"] for s in stack.sms()].count("+15559990001") == 1
    assert stack.stats()["total_users"] == before + 1


def test_a_malformed_message_is_dead_lettered_and_later_ones_still_flow(stack: Stack) -> None:
    poison = OutgoingMessage(
        b"{this is not json",
        LIVE_SIGNED_UP_KEY,
        f"poison-{uuid.uuid4().hex[:6]}",
        "UserSignedUp",
        1,
        "c",
        "test",
    )
    publisher = ConfirmingPublisher(stack.amqp_url)
    publisher.publish_batch([poison])
    publisher.close()
    with httpx.Client(timeout=10) as client:
        user = stack.signup(client, 900_001, phone=False, plan="free")
    wait_until(lambda: user["user_id"] in stack.spaces(), 30, message="later signup processed")
    for queue in CONSUMER_QUEUES:

        def dead() -> list[dict[str, Any]]:
            return [
                m
                for m in stack.dead_letters(f"{queue}.dlq")  # noqa: B023
                if m["properties"].get("message_id") == poison.message_id
            ]

        [message] = wait_until(dead, 30, message=f"poison in {queue}.dlq")
        headers = message["properties"]["headers"]
        assert headers["x-signup-failure-kind"] == "permanent"
        assert "invalid event" in headers["x-signup-error-message"]


def test_one_correlation_id_is_in_the_logs_of_all_four_services(stack: Stack) -> None:
    correlation_id = f"trace-{uuid.uuid4()}"
    with httpx.Client(timeout=10) as client:
        user = stack.signup(client, 900_002, phone=True, plan="pro", correlation_id=correlation_id)
    wait_until(lambda: user["user_id"] in stack.spaces(), 30, message="space created")
    logs = {"accounts-web", "notifications", "provisioning", "stats", "accounts-consumer"}
    wait_until(
        lambda: all(correlation_id in stack.log(name) for name in logs),
        30,
        message="correlation id in every service's logs",
    )
