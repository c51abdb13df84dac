"""Business rules of stats: counting signups and activations, reading the figures back."""

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, get_args

import structlog
from sqlalchemy import CompoundSelect, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import InstrumentedAttribute, Session

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


def increment(counted: InstrumentedAttribute[int], **key: Any) -> Insert:
    """``INSERT key, 1 ON CONFLICT (key) DO UPDATE SET counted = table.counted + 1``.

    One atomic statement: concurrent increments of the same row queue on its row lock and each
    adds one to the value the previous one committed (a read-modify-write would lose updates).
    """
    return (
        insert(counted.class_)
        .values({**key, counted.key: 1})
        .on_conflict_do_update(index_elements=list(key), set_={counted.key: counted + 1})
    )


def record_signup(session: Session, event: Envelope[UserSignedUp]) -> None:
    """One more user, on their plan and on the UTC day they signed up.

    Rows are always locked in the same order (counter, plan, day) so that concurrent
    handlers cannot deadlock each other.
    """
    signup = event.data
    day = signup.signed_up_at.astimezone(UTC).date()
    session.execute(increment(Counter.value, name=CounterName.TOTAL_USERS.value))
    session.execute(increment(PlanSignups.count, plan=signup.plan))
    session.execute(increment(DailySignups.count, day=day))
    log.info("stats.signup_recorded", plan=signup.plan, day=day.isoformat())


def record_activation(session: Session, event: Envelope[SpaceProvisioned]) -> None:
    """A provisioned space means one more activated subscription."""
    session.execute(increment(Counter.value, name=CounterName.ACTIVATED_SUBSCRIPTIONS.value))
    log.info("stats.activation_recorded", user_id=str(event.data.user_id))


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
    log.info("inbox.pruned", rows=pruned, retention_days=retention.days)
    return pruned
