"""Several consumer processes on one queue: every signup counted once, none lost, none doubled."""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from signup_shared.db import make_engine, make_session_factory
from signup_shared.messaging.handlers import exactly_once, session_handler
from signup_shared.testing import migrated_database
from stats import actions, bootstrap, consumers
from stats.models import InboxMessage
from stats.settings import StatsSettings

pytestmark = pytest.mark.integration

N = 16
PLANS = ("free", "pro", "team")


@pytest.fixture
def committing_sessions(migrations_dir: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit, on a scratch database dropped at the end of the test."""
    with migrated_database("stats", migrations_dir) as scratch:
        engine = make_engine(scratch.url.render_as_string(hide_password=False), pool_size=2 * N)
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


def deliver_concurrently(sessions: sessionmaker[Session], events: list[Any]) -> None:
    handle = session_handler(
        sessions, exactly_once("stats.user_signed_up", InboxMessage, consumers.on_user_signed_up)
    )
    start_together = threading.Barrier(len(events), timeout=30)

    def deliver(event: Any) -> None:
        start_together.wait()
        handle(event)

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        list(pool.map(deliver, events))


def test_concurrent_signups_are_all_counted(committing_sessions, signup_event) -> None:
    events = [signup_event(plan=PLANS[i % 3]) for i in range(N)]

    deliver_concurrently(committing_sessions, events)

    with committing_sessions() as session:
        stats = actions.read_stats(session)
    assert stats.total_users == N
    assert stats.signups_per_plan == {plan: events_of(events, plan) for plan in PLANS}
    assert stats.signups_per_day == {"2024-05-01": N}


def test_concurrent_duplicates_are_counted_once(committing_sessions, signup_event) -> None:
    events = [signup_event(plan=PLANS[i % 3]) for i in range(N // 2)]

    deliver_concurrently(committing_sessions, events + [e.model_copy() for e in events])

    with committing_sessions() as session:
        stats = actions.read_stats(session)
        handled = session.scalar(select(func.count()).select_from(InboxMessage))
    assert stats.total_users == N // 2
    assert sum(stats.signups_per_plan.values()) == N // 2
    assert handled == N // 2


def test_concurrent_signups_of_one_user_under_new_event_ids_count_once(
    committing_sessions, signup_event
) -> None:
    users = [uuid.uuid4() for _ in range(N // 4)]
    events = [signup_event(plan=PLANS[i % 3], user_id=users[i % len(users)]) for i in range(N)]

    deliver_concurrently(committing_sessions, events)

    with committing_sessions() as session:
        stats = actions.read_stats(session)
        handled = session.scalar(select(func.count()).select_from(InboxMessage))
    assert (stats.total_users, sum(stats.signups_per_plan.values()), handled) == (
        len(users),
        len(users),
        N,
    )


def events_of(events: list[Any], plan: str) -> int:
    return sum(1 for event in events if event.data.plan == plan)


def test_competing_batches_overlapping_in_any_order_count_each_event_once(
    committing_sessions, signup_event
) -> None:
    queue = bootstrap.queues(StatsSettings())[0]
    handle_batch = consumers.on_user_signed_up.subscription(
        queue, committing_sessions, InboxMessage
    ).batch_handler
    assert handle_batch is not None
    events = [signup_event(plan=PLANS[i % 3]) for i in range(N)]
    batches = [events[: N * 3 // 4], list(reversed(events[N // 4 :])), events[::2], events[1::2]]
    start_together = threading.Barrier(len(batches), timeout=30)

    def deliver(batch: list[Any]) -> None:
        start_together.wait()
        handle_batch(batch)

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        list(pool.map(deliver, batches))

    with committing_sessions() as session:
        stats = actions.read_stats(session)
        handled = session.scalar(select(func.count()).select_from(InboxMessage))
    assert (stats.total_users, handled) == (N, N)
    assert stats.signups_per_plan == {plan: events_of(events, plan) for plan in PLANS}
