"""When each signup's effects were committed, read back from the four services' databases.

Every timestamp is taken by the service inside the transaction that commits the effect, a moment
before the commit (PostgreSQL here does not track commit timestamps):

- committed:      accounts ``users.created_at`` (the signup request's transaction)
- email recorded: notifications ``notifications.created_at`` (welcome email owed, channel email)
- email sent:     notifications ``notifications.sent_at`` (stamped just before the SMTP call,
                  committed after the sink accepted it)
- sms sent:       the same for the channel ``sms`` row (only signups that gave a phone number)
- space:          provisioning ``spaces.created_at``
- stats:          stats ``inbox.received_at`` for consumer ``stats.user_signed_up`` and the
                  signup's event id (``now()``: the start of the counting transaction); the event
                  id comes from accounts ``outbox.event_id`` whose payload names the user
- active:         accounts ``subscriptions.activated_at`` (SpaceProvisioned handled by accounts)

End to end is from ``committed`` to the last of email sent, SMS sent (when owed), space, stats
and active. Stats also counts each SpaceProvisioned (``stats.space_provisioned``); that has no
per-signup timestamp, so it is not in the latency, but ``missing`` waits for it too (globally:
every space counted), so a CPU window closes only once all work is done.

The reader's connections say ``application_name=signup-bench``, so the CPU of the PostgreSQL
backends serving them can be told apart from the stack's own.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from platform_harness.stack import Stack

STATS_CONSUMER = "stats.user_signed_up"
STATS_ACTIVATIONS = "stats.space_provisioned"
APPLICATION_NAME = "signup-bench"
EFFECTS = ("email_sent", "sms_sent", "space", "stats", "active")

SIGNUPS = sa.text(
    "SELECT u.id, u.created_at, o.event_id, u.phone IS NOT NULL FROM users u JOIN outbox o"
    " ON o.event_type = 'UserSignedUp' AND (o.payload::jsonb #>> '{data,user_id}')::uuid = u.id"
    " WHERE u.id = ANY(:ids)"
)
EMAILS = sa.text(
    "SELECT user_id, created_at, sent_at FROM notifications"
    " WHERE channel = 'email' AND user_id = ANY(:ids)"
)
TEXTS = sa.text(
    "SELECT user_id, sent_at FROM notifications WHERE channel = 'sms' AND user_id = ANY(:ids)"
)
ACTIVATIONS = sa.text(
    "SELECT user_id, activated_at FROM subscriptions"
    " WHERE activated_at IS NOT NULL AND user_id = ANY(:ids)"
)
SPACES = sa.text("SELECT user_id, created_at FROM spaces WHERE user_id = ANY(:ids)")
COUNTED = sa.text(
    "SELECT event_id, received_at FROM inbox WHERE consumer = :consumer AND event_id = ANY(:ids)"
)
NOTIFICATIONS_SENT = sa.text(
    "SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL AND user_id = ANY(:ids)"
)
ACTIVE = sa.text(
    "SELECT count(*) FROM subscriptions WHERE activated_at IS NOT NULL AND user_id = ANY(:ids)"
)
ALL_SPACES = sa.text("SELECT count(*) FROM spaces")
ALL_ACTIVATIONS_COUNTED = sa.text("SELECT count(*) FROM inbox WHERE consumer = :consumer")
BENCH_BACKENDS = sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
SPACES_MADE = sa.text("SELECT count(*) FROM spaces WHERE user_id = ANY(:ids)")
EVENTS_COUNTED = sa.text(
    "SELECT count(*) FROM inbox WHERE consumer = :consumer AND event_id = ANY(:ids)"
)
FIRST_COUNTED = sa.text(
    "SELECT min(received_at) FROM inbox WHERE consumer = :consumer AND event_id = ANY(:ids)"
)
USERS = sa.text(
    "SELECT count(*), count(u.phone), count(s.activated_at) FROM users u"
    " LEFT JOIN subscriptions s ON s.user_id = u.id"
)
ALL_SENT = sa.text(
    "SELECT count(*) FILTER (WHERE channel = 'email'), count(*) FILTER (WHERE channel = 'sms')"
    " FROM notifications WHERE sent_at IS NOT NULL"
)


@dataclass(frozen=True)
class SignupTimes:
    user_id: uuid.UUID
    event_id: uuid.UUID
    committed: datetime
    phone: bool = False
    email_recorded: datetime | None = None
    email_sent: datetime | None = None
    sms_sent: datetime | None = None
    space: datetime | None = None
    stats: datetime | None = None
    active: datetime | None = None

    @property
    def effects(self) -> tuple[str, ...]:
        """The effects this signup owes (no SMS without a phone number)."""
        return EFFECTS if self.phone else tuple(e for e in EFFECTS if e != "sms_sent")

    @property
    def complete(self) -> bool:
        return all(getattr(self, effect) is not None for effect in self.effects)

    def after(self, effect: str) -> float | None:
        """Milliseconds from the signup's commit to ``effect`` (None while it has not happened)."""
        moment: datetime | None = getattr(self, effect)
        return None if moment is None else (moment - self.committed).total_seconds() * 1000

    @property
    def last_effect(self) -> datetime | None:
        """When the last owed effect was committed (None until all of them were)."""
        moments = [getattr(self, effect) for effect in self.effects]
        return None if None in moments else max(moments)

    @property
    def end_to_end(self) -> float | None:
        """Milliseconds until the last owed effect (None until all of them happened)."""
        last = self.last_effect
        return None if last is None else (last - self.committed).total_seconds() * 1000


class EffectReader:
    """Reads the four databases of a running ``Stack`` with bound parameters."""

    def __init__(self, stack: Stack) -> None:
        self.engines = {
            service: sa.create_engine(
                stack.database_url(service),
                pool_size=1,
                max_overflow=0,
                connect_args={"application_name": APPLICATION_NAME},
            )
            for service in ("accounts", "notifications", "provisioning", "stats")
        }

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def _rows(self, service: str, statement: sa.TextClause, **params: Any) -> list[Any]:
        with self.engines[service].connect() as connection:
            return list(connection.execute(statement, params).all())

    def _count(self, service: str, statement: sa.TextClause, **params: Any) -> int:
        with self.engines[service].connect() as connection:
            return int(connection.execute(statement, params).scalar_one())

    def signups(self, user_ids: Sequence[str]) -> dict[uuid.UUID, SignupTimes]:
        ids = [uuid.UUID(user_id) for user_id in user_ids]
        return {
            row[0]: SignupTimes(row[0], row[2], row[1], phone=bool(row[3]))
            for row in self._rows("accounts", SIGNUPS, ids=ids)
        }

    def missing(self, signups: dict[uuid.UUID, SignupTimes]) -> int:
        """How many effects of these signups are not committed yet (cheap: counts only), plus
        how many spaces anywhere in the stack stats has not counted as activations yet."""
        users, events = list(signups), [s.event_id for s in signups.values()]
        done = (
            self._count("notifications", NOTIFICATIONS_SENT, ids=users)
            + self._count("provisioning", SPACES_MADE, ids=users)
            + self._count("stats", EVENTS_COUNTED, consumer=STATS_CONSUMER, ids=events)
            + self._count("accounts", ACTIVE, ids=users)
        )
        owed = sum(len(s.effects) for s in signups.values())
        return owed - done + self.uncounted_spaces()

    def uncounted_spaces(self) -> int:
        """Spaces of the whole stack that stats has not counted as activations yet."""
        uncounted = self._count("provisioning", ALL_SPACES) - self._count(
            "stats", ALL_ACTIVATIONS_COUNTED, consumer=STATS_ACTIVATIONS
        )
        return max(uncounted, 0)

    def counted(self, event_ids: Sequence[uuid.UUID]) -> int:
        """How many of these ``UserSignedUp`` events stats has counted."""
        return self._count("stats", EVENTS_COUNTED, consumer=STATS_CONSUMER, ids=list(event_ids))

    def first_counted(self, event_ids: Sequence[uuid.UUID]) -> float | None:
        """When stats began counting the first of these events (epoch seconds), if it has."""
        rows = self._rows("stats", FIRST_COUNTED, consumer=STATS_CONSUMER, ids=list(event_ids))
        return None if not rows or rows[0][0] is None else float(rows[0][0].timestamp())

    def bench_backends(self) -> frozenset[int]:
        """PostgreSQL backend pids serving this reader (any database)."""
        return frozenset(
            int(row[0]) for row in self._rows("accounts", BENCH_BACKENDS, name=APPLICATION_NAME)
        )

    def backlog(self) -> int:
        """Effects owed to any signup of the stack so far that are not committed yet (counts
        only; stats may have counted more signups than accounts has: the backlog drain)."""
        users, phones, active = self._rows("accounts", USERS)[0]
        emails, texts = self._rows("notifications", ALL_SENT)[0]
        spaces = self._count("provisioning", ALL_SPACES)
        counted = self._count("stats", ALL_ACTIVATIONS_COUNTED, consumer=STATS_CONSUMER)
        shortfalls = (
            users - emails,
            phones - texts,
            users - spaces,
            users - active,
            users - counted,
        )
        return sum(max(int(n), 0) for n in shortfalls) + self.uncounted_spaces()

    def times(self, signups: dict[uuid.UUID, SignupTimes]) -> list[SignupTimes]:
        users = list(signups)
        by_event = {s.event_id: s.user_id for s in signups.values()}
        found: dict[uuid.UUID, dict[str, datetime | None]] = {user: {} for user in users}
        for user_id, recorded, sent in self._rows("notifications", EMAILS, ids=users):
            found[user_id].update(email_recorded=recorded, email_sent=sent)
        for user_id, sent in self._rows("notifications", TEXTS, ids=users):
            found[user_id]["sms_sent"] = sent
        for user_id, activated in self._rows("accounts", ACTIVATIONS, ids=users):
            found[user_id]["active"] = activated
        for user_id, created in self._rows("provisioning", SPACES, ids=users):
            found[user_id]["space"] = created
        counted = self._rows("stats", COUNTED, consumer=STATS_CONSUMER, ids=list(by_event))
        for event_id, received in counted:
            found[by_event[event_id]]["stats"] = received
        return [_with(s, found[s.user_id]) for s in signups.values()]


def _with(signup: SignupTimes, found: dict[str, datetime | None]) -> SignupTimes:
    return dataclasses.replace(
        signup,
        email_recorded=found.get("email_recorded"),
        email_sent=found.get("email_sent"),
        sms_sent=found.get("sms_sent"),
        space=found.get("space"),
        stats=found.get("stats"),
        active=found.get("active"),
    )
