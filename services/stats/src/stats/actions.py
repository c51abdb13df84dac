"""Business rules of stats: counting signups and activations, reading the figures back."""

from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
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


def increment(counted: InstrumentedAttribute[int], by: int = 1, **key: Any) -> Insert:
    """``INSERT key, by ON CONFLICT (key) DO UPDATE SET counted = table.counted + by``.

    One atomic statement: concurrent increments of the same row queue on its row lock and each
    adds to the value the previous one committed (a read-modify-write would lose updates).
    """
    return (
        insert(counted.class_)
        .values({**key, counted.key: by})
        .on_conflict_do_update(index_elements=list(key), set_={counted.key: counted + by})
    )


def record_signup(session: Session, event: Envelope[UserSignedUp]) -> None:
    """One more user, on their plan and on the UTC day they signed up."""
    record_signups(session, [event])


def record_signups(session: Session, events: Sequence[Envelope[UserSignedUp]]) -> None:
    """More users, counted per plan and per UTC day they signed up: one upsert per row.

    Rows are always locked in the same order (counter, plans, days, each sorted) so that
    concurrent handlers cannot deadlock each other.
    """
    if not events:
        return
    plans: Tally[str] = Tally(event.data.plan for event in events)
    days: Tally[date] = Tally(event.data.signed_up_at.astimezone(UTC).date() for event in events)
    session.execute(increment(Counter.value, len(events), name=CounterName.TOTAL_USERS.value))
    for plan, count in sorted(plans.items()):
        session.execute(increment(PlanSignups.count, count, plan=plan))
    for day, count in sorted(days.items()):
        session.execute(increment(DailySignups.count, count, day=day))
    log.debug("stats.signups_recorded", count=len(events), plans=dict(plans))


def record_activation(session: Session, event: Envelope[SpaceProvisioned]) -> None:
    """A provisioned space means one more activated subscription."""
    record_activations(session, [event])


def record_activations(session: Session, events: Sequence[Envelope[SpaceProvisioned]]) -> None:
    """Each provisioned space means one more activated subscription: one upsert for all."""
    if not events:
        return
    session.execute(
        increment(Counter.value, len(events), name=CounterName.ACTIVATED_SUBSCRIPTIONS.value)
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
