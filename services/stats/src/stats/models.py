"""Persistence of the user statistics (plus this service's inbox): every statement stats runs.

Every count is a row that handlers only ever increment with an atomic upsert, so concurrent
consumers never lose or double an update. Who has been counted is kept per counter
(``counted_users``), so a user is counted once however many events name them.
"""

import enum
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Date,
    DateTime,
    String,
    Text,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from signup_shared.events import Envelope
from signup_shared.inbox import InboxMixin
from signup_shared.outbox import OutboxMixin, outbox_values

COUNTER, PLAN, DAY = "counter", "plan", "day"


class Base(DeclarativeBase):
    pass


class CounterName(enum.StrEnum):
    TOTAL_USERS = "total_users"
    ACTIVATED_SUBSCRIPTIONS = "activated_subscriptions"


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class PlanSignups(Base):
    __tablename__ = "plan_signups"

    plan: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class DailySignups(Base):
    """Signups per calendar day in UTC."""

    __tablename__ = "daily_signups"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class CountedUser(Base):
    """A user already added to ``counter``: the natural key that makes counting idempotent."""

    __tablename__ = "counted_users"

    counter: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class InboxMessage(InboxMixin, Base):
    pass


# Both statements are constants, so SQLAlchemy compiles each once and every batch, whatever its
# size, is one round trip. Each first inserts the batch's users into counted_users (sorted, ON
# CONFLICT DO NOTHING: a user counted before, or twice in the batch, is not returned) and counts
# only the users it inserted. Increments are atomic upserts: concurrent increments of the same
# row queue on its row lock and each adds to the value the previous one committed.
COUNT_USERS = text(
    """
    WITH new AS (
        INSERT INTO counted_users (counter, user_id)
        SELECT :counter, added.user_id
        FROM unnest(CAST(:user_ids AS uuid[])) AS added(user_id)
        ORDER BY added.user_id
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    INSERT INTO counters (name, value)
    SELECT :counter, count(*) FROM new HAVING count(*) > 0
    ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
    """
)
# Lock order: the counted_users keys (sorted), then the total_users row (the total reads every
# new user first), then plan and day rows, which a one-time filter keeps behind the total: so
# concurrent signup transactions queue on that one row, and the plan and day rows (each sorted,
# each once) are only ever taken behind it: no deadlock. A user named twice in one batch counts
# with their first signup (plan and day).
RECORD_SIGNUPS = text(
    """
    WITH signup AS (
        SELECT DISTINCT ON (added.user_id) added.user_id, added.plan, added.day
        FROM unnest(CAST(:user_ids AS uuid[]), CAST(:plans AS text[]), CAST(:days AS date[]))
             WITH ORDINALITY AS added(user_id, plan, day, position)
        ORDER BY added.user_id, added.position
    ), new AS (
        INSERT INTO counted_users (counter, user_id)
        SELECT :counter, signup.user_id FROM signup
        ORDER BY signup.user_id
        ON CONFLICT DO NOTHING
        RETURNING user_id
    ), counted AS (
        SELECT signup.plan, signup.day FROM signup JOIN new USING (user_id)
    ), total AS (
        INSERT INTO counters (name, value)
        SELECT :counter, count(*) FROM counted HAVING count(*) > 0
        ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
        RETURNING 1
    ), plans AS (
        INSERT INTO plan_signups (plan, count)
        SELECT counted.plan, count(*) FROM counted
        WHERE EXISTS (SELECT FROM total)
        GROUP BY counted.plan
        ORDER BY counted.plan
        ON CONFLICT (plan) DO UPDATE SET count = plan_signups.count + excluded.count
        RETURNING 1
    )
    INSERT INTO daily_signups (day, count)
    SELECT counted.day, count(*) FROM counted
    WHERE EXISTS (SELECT FROM total)
    GROUP BY counted.day
    ORDER BY counted.day
    ON CONFLICT (day) DO UPDATE SET count = daily_signups.count + excluded.count
    """
)
# Every figure as (kind, key, value) rows. One statement reads one snapshot, so the figures agree
# with each other (total_users is always the sum over plans) even while signups are recorded.
FIGURES: CompoundSelect[Any] = union_all(
    select(literal(COUNTER).label("kind"), Counter.name.label("key"), Counter.value.label("value")),
    select(literal(PLAN), PlanSignups.plan, PlanSignups.count),
    select(literal(DAY), func.to_char(DailySignups.day, "YYYY-MM-DD"), DailySignups.count),
)


def add_signups(
    session: Session, user_ids: Sequence[uuid.UUID], plans: Sequence[str], days: Sequence[date]
) -> None:
    """Count each user not counted yet in total_users, on their plan and UTC day (aligned
    sequences, one entry per signup): one statement, in the caller's transaction."""
    if not len(user_ids) == len(plans) == len(days):
        raise ValueError(
            f"one plan and one day per user: {len(user_ids)} users,"
            f" {len(plans)} plans, {len(days)} days"
        )
    session.execute(
        RECORD_SIGNUPS,
        {
            "counter": CounterName.TOTAL_USERS.value,
            "user_ids": list(user_ids),
            "plans": list(plans),
            "days": list(days),
        },
    )


def count_users(session: Session, counter: CounterName, user_ids: Sequence[uuid.UUID]) -> None:
    """Add to ``counter`` each of ``user_ids`` it has not counted yet: one statement."""
    session.execute(COUNT_USERS, {"counter": counter.value, "user_ids": list(user_ids)})


def read_figures(session: Session) -> list[tuple[str, str, int]]:
    """Every figure as ``(kind, key, value)``, kind one of COUNTER, PLAN, DAY (one snapshot)."""
    return [(kind, key, int(value)) for kind, key, value in session.execute(FIGURES).all()]


class ErasedUser(Base):
    """A user erased: stats holds no personal data (counts, user ids), so it only confirms."""

    __tablename__ = "erased_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID]
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(OutboxMixin, Base):
    """``UserErased`` confirmations waiting for the consumer process's relay job."""


RECORD_ERASED = text(
    """
    INSERT INTO erased_users (user_id, event_id, erased_at) VALUES (:user_id, :event_id, :now)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
    """
)
INSERT_EVENT = text(
    """
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    VALUES (:event_id, :routing_key, :event_type, :version, :producer, :correlation_id,
            :payload, :traceparent)
    """
)


def record_erased(session: Session, user_id: uuid.UUID, event_id: uuid.UUID, now: datetime) -> bool:
    """Record that the user was erased; False if they were before."""
    params = {"user_id": user_id, "event_id": event_id, "now": now}
    return session.execute(RECORD_ERASED, params).first() is not None


def add_event(session: Session, event: Envelope[Any]) -> None:
    session.execute(INSERT_EVENT, outbox_values(event))
