"""Settling and checking every effect of every signup against the truth (the accounts DB)."""

import mailbox
import time
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

import httpx

from platform_harness.stack import Stack
from signup_contracts.amqp import HISTORY_STREAM

RETRY_MARK = ".retry."
# (stack, Maildir key) -> the recipient of that stored email: a delivered file never changes, so
# each is read once, not again on every observation of a stack that holds thousands of them.
_RECIPIENTS: dict[tuple[str, str], str] = {}


def email_recipients(stack: Stack) -> Counter[str]:
    """How many emails the SMTP sink stored for each recipient (``To``)."""
    maildir = stack.root / "var" / "mail"
    if not maildir.is_dir():
        return Counter()
    box = mailbox.Maildir(maildir, factory=None, create=False)
    parser = BytesHeaderParser(policy=policy.default)
    found: Counter[str] = Counter()
    for key in box.iterkeys():
        recipient = _RECIPIENTS.get((stack.name, key))
        if recipient is None:
            recipient = str(parser.parsebytes(box.get_bytes(key))["To"])
            _RECIPIENTS[(stack.name, key)] = recipient
        found[recipient] += 1
    return found


@dataclass(frozen=True)
class Truth:
    users: dict[str, dict[str, Any]]  # user_id -> {email, phone, plan}

    @classmethod
    def read(cls, stack: Stack) -> "Truth":
        rows = stack.query(
            "accounts",
            "SELECT u.id, u.email, u.phone, s.plan, s.status FROM users u "
            "JOIN subscriptions s ON s.user_id = u.id",
        )
        return cls(
            {str(r[0]): {"email": r[1], "phone": r[2], "plan": r[3], "status": r[4]} for r in rows}
        )


@dataclass(frozen=True)
class Baseline:
    """What a stack already held before a scenario (several scenarios may share one stack):
    its signups, the dead letters in each dead-letter queue."""

    signups: int
    dead_letters: dict[str, int]

    @classmethod
    def read(cls, stack: Stack) -> "Baseline":
        queues = stack.queues()
        return cls(
            signups=len(Truth.read(stack).users),
            dead_letters={q: n for q, n in queues.items() if q.endswith(".dlq")},
        )

    @property
    def dlq(self) -> int:
        return sum(self.dead_letters.values())


@dataclass(frozen=True)
class Figures:
    scenario: str
    signups: int
    emails: int
    sms: int
    spaces: int
    active: int
    stats_total: int
    lost: int
    duplicated: int
    dlq: int
    resent_emails: int
    settle_seconds: float

    def line(self) -> str:
        return (
            f"{self.scenario}: signups={self.signups} emails={self.emails} sms={self.sms} "
            f"spaces={self.spaces} active={self.active} stats_total={self.stats_total} "
            f"lost={self.lost} duplicated={self.duplicated} dlq={self.dlq} "
            f"resent_emails_suppressed={self.resent_emails} "
            f"settle={self.settle_seconds:.1f}s"
        )


def observe(
    stack: Stack, scenario: str, settle_seconds: float, sms_refused: frozenset[str] = frozenset()
) -> tuple[Figures, list[str]]:
    """Figures of the current state and the list of what is still wrong."""
    truth = Truth.read(stack)
    emails = email_recipients(stack)
    sms = Counter(s["to"] for s in stack.sms())
    spaces = Counter(stack.spaces())
    stats = httpx.get(stack.url("stats", "/stats"), timeout=5).json()
    problems: list[str] = []
    lost = duplicated = 0
    for user_id, user in truth.users.items():
        wanted_sms = 1 if user["phone"] and user["phone"] not in sms_refused else 0
        for what, have, want in (
            ("email", emails[user["email"]], 1),
            ("sms", sms[user["phone"]] if user["phone"] else 0, wanted_sms),
            ("space", spaces[user_id], 1),
            ("active", int(user["status"] == "active"), 1),
        ):
            if have < want:
                lost += 1
                problems.append(f"{user_id}: {what} missing")
            elif have > want:
                duplicated += have - want
                problems.append(f"{user_id}: {what} x{have}")
    plans = Counter(u["plan"] for u in truth.users.values())
    expected_stats = {
        "total_users": len(truth.users),
        "activated_subscriptions": len(truth.users),
        "signups_per_plan": {p: plans[p] for p in ("free", "pro", "team")},
    }
    for key, value in expected_stats.items():
        if stats[key] != value:
            problems.append(f"stats {key}={stats[key]} != {value}")
            if key == "total_users":
                lost += max(0, value - stats[key])
                duplicated += max(0, stats[key] - value)
    queues = stack.queues()
    kept = ("events.unrouted", HISTORY_STREAM)  # the history keeps every event by design
    busy = {q: n for q, n in queues.items() if n and not q.endswith(".dlq") and q not in kept}
    if busy:
        problems.append(f"queues not empty: {busy}")
    dlq = sum(n for q, n in queues.items() if q.endswith(".dlq"))
    figures = Figures(
        scenario=scenario,
        signups=len(truth.users),
        emails=sum(emails.values()),
        sms=sum(sms.values()),
        spaces=len(spaces),
        active=sum(1 for u in truth.users.values() if u["status"] == "active"),
        stats_total=int(stats["total_users"]),
        lost=lost,
        duplicated=duplicated,
        dlq=dlq,
        resent_emails=stack.resent_emails(),
        settle_seconds=settle_seconds,
    )
    return figures, problems


def settle(
    stack: Stack,
    scenario: str,
    load_done_at: float,
    *,
    expected_dlq: int = 0,
    timeout: float = 240,
    sms_refused: frozenset[str] = frozenset(),
) -> Figures:
    """Wait until every effect is there and every queue is empty, then report the figures."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            figures, problems = observe(
                stack, scenario, time.monotonic() - load_done_at, sms_refused
            )
        except (httpx.HTTPError, OSError) as exc:
            figures, problems = None, [f"not observable yet: {exc!r}"]
        if figures is not None and not problems and figures.dlq == expected_dlq:
            print(figures.line())
            return figures
        if time.monotonic() > deadline:
            summary = problems[:10] + ([f"dlq={figures.dlq}"] if figures else [])
            if figures is not None:
                print(figures.line())
            raise AssertionError(f"{scenario} did not settle: {summary}")
        time.sleep(1.0)
