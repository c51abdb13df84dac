"""Business rules of stats: counting signups and activations, reading the figures back.

A user is counted once per figure, however many events name them (the natural key is the
user id, not the event id): see ``record_signups`` and ``record_activations``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

import structlog
from sqlalchemy.orm import Session

from signup_contracts import UserErased, UserErasureRequested
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.events.contracts import Plan
from stats import models
from stats.models import COUNTER, DAY, PLAN, CounterName

PLANS: tuple[str, ...] = get_args(Plan)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stats:
    total_users: int
    signups_per_plan: dict[str, int]
    signups_per_day: dict[str, int]
    activated_subscriptions: int


def record_signup(session: Session, event: Envelope[UserSignedUp]) -> None:
    """One more user, on their plan and on the UTC day they signed up."""
    record_signups(session, [event])


def record_signups(session: Session, events: Sequence[Envelope[UserSignedUp]]) -> None:
    """More users, counted in total, per plan and per UTC day they signed up: one statement.

    A ``UserSignedUp`` for a user already counted (a new event id, same ``user_id``) is a
    duplicate or a forgery: a user signs up once. It is ignored; the first signup counted
    keeps its plan and day, and the event is still acknowledged. The same holds inside a batch.
    """
    if not events:
        return
    models.add_signups(
        session,
        [event.data.user_id for event in events],
        [event.data.plan for event in events],
        [event.data.signed_up_at.astimezone(UTC).date() for event in events],
    )
    log.debug("stats.signups_recorded", count=len(events))


def record_activation(session: Session, event: Envelope[SpaceProvisioned]) -> None:
    """A provisioned space means one more activated subscription."""
    record_activations(session, [event])


def record_activations(session: Session, events: Sequence[Envelope[SpaceProvisioned]]) -> None:
    """Each user whose space was provisioned is one more activated subscription, once.

    A second ``SpaceProvisioned`` for the same user (a new event id: provisioning gives a user
    one space, so a replay or a forgery) is ignored: that subscription is counted already.
    """
    if not events:
        return
    models.count_users(
        session, CounterName.ACTIVATED_SUBSCRIPTIONS, [event.data.user_id for event in events]
    )
    log.debug("stats.activations_recorded", count=len(events))


def read_stats(session: Session) -> Stats:
    """Every figure, from one snapshot; plans and figures never counted read as zero."""
    figures: dict[str, dict[str, int]] = {COUNTER: {}, PLAN: {}, DAY: {}}
    for kind, key, value in models.read_figures(session):
        figures[kind][key] = value
    counters = figures[COUNTER]
    return Stats(
        total_users=counters.get(CounterName.TOTAL_USERS.value, 0),
        signups_per_plan={plan: figures[PLAN].get(plan, 0) for plan in PLANS},
        signups_per_day=dict(sorted(figures[DAY].items())),
        activated_subscriptions=counters.get(CounterName.ACTIVATED_SUBSCRIPTIONS.value, 0),
    )


PRODUCER = "stats"


def confirm_erasure(
    session: Session, event: Envelope[UserErasureRequested], now: datetime | None = None
) -> Envelope[UserErased] | None:
    """Confirm an erasure: stats keeps counts and user ids only, none of them personal data,
    so the counts stay as they are. ``UserErased`` goes to the outbox, once per user."""
    now = now or datetime.now(UTC)
    user_id = event.data.user_id
    if not models.record_erased(session, user_id, event.id, now):
        log.debug("user.erased_before", user_id=str(user_id))
        return None
    confirmation = event.caused(
        UserErased(user_id=user_id, holder=PRODUCER, erased_at=now), producer=PRODUCER
    )
    models.add_event(session, confirmation)
    log.info("user.erased", user_id=str(user_id), event_id=str(confirmation.id))
    return confirmation
