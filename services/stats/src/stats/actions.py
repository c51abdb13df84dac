"""Business rules of stats: counting signups and activations, reading the figures back."""

from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any, get_args

import structlog
from sqlalchemy import CompoundSelect, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from signup_shared import inbox
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.events.contracts import Plan
from stats.models import Counter, CounterName, DailySignups, InboxMessage, PlanSignups

PLANS: tuple[str, ...] = get_args(Plan)
COUNTER, PLAN, DAY = "counter", "plan", "day"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stats:
    total_users: int
    signups_per_plan: dict[str, int]
    signups_per_day: dict[str, int]
    activated_subscriptions: int


# Both statements are constants, so SQLAlchemy compiles each once and every batch, whatever its
# size, is one round trip. Increments are atomic upserts: concurrent increments of the same row
# queue on its row lock and each adds to the value the previous one committed.
ADD_TO_COUNTER = text(
    "INSERT INTO counters (name, value) VALUES (:counter, :by)"
    " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value"
)
# The plan and day upserts have a one-time filter on the counter's upsert, so the total_users row
# is always locked first: concurrent signup transactions queue on that one row, and the plan and
# day rows (each array sorted, its rows once) are only ever taken behind it, so no deadlock.
RECORD_SIGNUPS = text(
    """
    WITH total AS (
        INSERT INTO counters (name, value) VALUES (:counter, :total)
        ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
        RETURNING 1
    ), plans AS (
        INSERT INTO plan_signups (plan, count)
        SELECT added.plan, added.count
        FROM unnest(CAST(:plans AS text[]), CAST(:plan_counts AS bigint[])) AS added(plan, count)
        WHERE EXISTS (SELECT FROM total)
        ORDER BY added.plan
        ON CONFLICT (plan) DO UPDATE SET count = plan_signups.count + excluded.count
        RETURNING 1
    )
    INSERT INTO daily_signups (day, count)
    SELECT added.day, added.count
    FROM unnest(CAST(:days AS date[]), CAST(:day_counts AS bigint[])) AS added(day, count)
    WHERE EXISTS (SELECT FROM total)
    ORDER BY added.day
    ON CONFLICT (day) DO UPDATE SET count = daily_signups.count + excluded.count
    """
)


def record_signup(session: Session, event: Envelope[UserSignedUp]) -> None:
    """One more user, on their plan and on the UTC day they signed up."""
    record_signups(session, [event])


def record_signups(session: Session, events: Sequence[Envelope[UserSignedUp]]) -> None:
    """More users, counted in total, per plan and per UTC day they signed up: one statement.

    Rows are always locked in the same order (the total first, then plans and days, each
    sorted) so that concurrent handlers cannot deadlock each other.
    """
    if not events:
        return
    plans: Tally[str] = Tally(event.data.plan for event in events)
    days: Tally[date] = Tally(event.data.signed_up_at.astimezone(UTC).date() for event in events)
    plan_keys, day_keys = sorted(plans), sorted(days)
    session.execute(
        RECORD_SIGNUPS,
        {
            "counter": CounterName.TOTAL_USERS.value,
            "total": len(events),
            "plans": plan_keys,
            "plan_counts": [plans[plan] for plan in plan_keys],
            "days": day_keys,
            "day_counts": [days[day] for day in day_keys],
        },
    )
    log.debug("stats.signups_recorded", count=len(events), plans=dict(plans))


def record_activation(session: Session, event: Envelope[SpaceProvisioned]) -> None:
    """A provisioned space means one more activated subscription."""
    record_activations(session, [event])


def record_activations(session: Session, events: Sequence[Envelope[SpaceProvisioned]]) -> None:
    """Each provisioned space means one more activated subscription: one upsert for all."""
    if not events:
        return
    session.execute(
        ADD_TO_COUNTER,
        {"counter": CounterName.ACTIVATED_SUBSCRIPTIONS.value, "by": len(events)},
    )
    log.debug("stats.activations_recorded", count=len(events))


def snapshot_query() -> CompoundSelect[Any]:
    """Every figure as ``(kind, key, value)`` rows.

    A single statement reads one snapshot, so the figures agree with each other (total_users
    is always the sum over plans) even while signups are being recorded.
    """
    return union_all(
        select(
            literal(COUNTER).label("kind"), Counter.name.label("key"), Counter.value.label("value")
        ),
        select(literal(PLAN), PlanSignups.plan, PlanSignups.count),
        select(literal(DAY), func.to_char(DailySignups.day, "YYYY-MM-DD"), DailySignups.count),
    )


def read_stats(session: Session) -> Stats:
    figures: dict[str, dict[str, int]] = {COUNTER: {}, PLAN: {}, DAY: {}}
    for kind, key, value in session.execute(snapshot_query()).all():
        figures[kind][key] = int(value)
    counters = figures[COUNTER]
    return Stats(
        total_users=counters.get(CounterName.TOTAL_USERS.value, 0),
        signups_per_plan={plan: figures[PLAN].get(plan, 0) for plan in PLANS},
        signups_per_day=dict(sorted(figures[DAY].items())),
        activated_subscriptions=counters.get(CounterName.ACTIVATED_SUBSCRIPTIONS.value, 0),
    )


def forget_handled_events(session: Session, retention: timedelta) -> int:
    """Drop inbox ids older than ``retention`` (longer than any redelivery can take)."""
    pruned = inbox.prune(session, InboxMessage, retention)
    if pruned:
        log.info("inbox.pruned", rows=pruned, retention_days=retention.days)
    return pruned
