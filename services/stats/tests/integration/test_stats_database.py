"""Rollback tier: each model function of stats against the real PostgreSQL, and the handlers."""

import uuid
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text, update

from signup_shared.messaging.handlers import batch_exactly_once, exactly_once
from stats import actions, bootstrap, consumers, models
from stats.models import (
    Base,
    CountedUser,
    Counter,
    CounterName,
    DailySignups,
    InboxMessage,
    PlanSignups,
)
from stats.settings import StatsSettings

pytestmark = pytest.mark.integration

MAY_1 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MAY_2 = datetime(2024, 5, 2, 23, 59, tzinfo=UTC)
SIGNUPS, ACTIVATIONS = "stats.user_signed_up", "stats.space_provisioned"


def plans(db) -> dict[str, int]:
    return dict(db.execute(select(PlanSignups.plan, PlanSignups.count)).all())


def days(db) -> dict[date, int]:
    return dict(db.execute(select(DailySignups.day, DailySignups.count)).all())


def counter(db, name: CounterName) -> int | None:
    return db.scalar(select(Counter.value).where(Counter.name == name.value))


def test_migration_creates_exactly_the_mapped_schema(engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


# models.add_signups -------------------------------------------------------------------------
def test_add_signups_counts_each_user_in_total_per_plan_and_per_day(db) -> None:
    users = [uuid.uuid4() for _ in range(4)]

    models.add_signups(
        db, users, ["team", "free", "team", "pro"], [date(2024, 5, 2)] + [date(2024, 5, 1)] * 3
    )

    assert counter(db, CounterName.TOTAL_USERS) == 4
    assert plans(db) == {"free": 1, "pro": 1, "team": 2}
    assert days(db) == {date(2024, 5, 1): 3, date(2024, 5, 2): 1}
    assert db.scalars(select(CountedUser.user_id)).all() == sorted(users)


def test_add_signups_adds_to_the_committed_values_not_to_values_read_earlier(db) -> None:
    models.add_signups(db, [uuid.uuid4()], ["free"], [date(2024, 5, 1)])
    db.execute(update(PlanSignups).values(count=41))
    db.execute(update(DailySignups).values(count=41))
    db.execute(update(Counter).values(value=41))

    models.add_signups(db, [uuid.uuid4()], ["free"], [date(2024, 5, 1)])

    assert (counter(db, CounterName.TOTAL_USERS), plans(db), days(db)) == (
        42,
        {"free": 42},
        {date(2024, 5, 1): 42},
    )


def test_add_signups_counts_a_user_named_twice_in_one_call_once_with_the_first_signup(db) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()

    models.add_signups(
        db,
        [user, other, user],
        ["pro", "free", "team"],
        [date(2024, 5, 1), date(2024, 5, 1), date(2024, 5, 2)],
    )

    assert counter(db, CounterName.TOTAL_USERS) == 2
    assert plans(db) == {"free": 1, "pro": 1}
    assert days(db) == {date(2024, 5, 1): 2}


def test_add_signups_of_users_counted_before_touches_no_figure(db) -> None:
    user = uuid.uuid4()
    models.add_signups(db, [user], ["pro"], [date(2024, 5, 1)])

    models.add_signups(db, [user], ["team"], [date(2024, 5, 2)])

    assert (counter(db, CounterName.TOTAL_USERS), plans(db), days(db)) == (
        1,
        {"pro": 1},
        {date(2024, 5, 1): 1},
    )


def test_add_signups_refuses_sequences_that_do_not_line_up(db) -> None:
    with pytest.raises(ValueError, match="2 users, 1 plans, 2 days"):
        models.add_signups(db, [uuid.uuid4(), uuid.uuid4()], ["pro"], [date(2024, 5, 1)] * 2)

    assert counter(db, CounterName.TOTAL_USERS) is None


# models.count_users -------------------------------------------------------------------------
def test_count_users_adds_each_new_user_once(db) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()

    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [first, second, first])
    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [second])
    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [uuid.uuid4()])

    assert counter(db, CounterName.ACTIVATED_SUBSCRIPTIONS) == 3


def test_count_users_counts_per_counter(db) -> None:
    user = uuid.uuid4()
    models.add_signups(db, [user], ["pro"], [date(2024, 5, 1)])

    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [user])

    assert counter(db, CounterName.TOTAL_USERS) == 1
    assert counter(db, CounterName.ACTIVATED_SUBSCRIPTIONS) == 1


def test_count_users_of_no_new_user_leaves_the_counter_untouched(db) -> None:
    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [])

    assert counter(db, CounterName.ACTIVATED_SUBSCRIPTIONS) is None


# models.read_figures ------------------------------------------------------------------------
def test_read_figures_reads_every_counter_plan_and_day(db) -> None:
    models.add_signups(db, [uuid.uuid4(), uuid.uuid4()], ["pro", "free"], [date(2024, 5, 2)] * 2)
    models.count_users(db, CounterName.ACTIVATED_SUBSCRIPTIONS, [uuid.uuid4()])

    assert sorted(models.read_figures(db)) == [
        ("counter", "activated_subscriptions", 1),
        ("counter", "total_users", 2),
        ("day", "2024-05-02", 2),
        ("plan", "free", 1),
        ("plan", "pro", 1),
    ]


def test_read_figures_writes_days_as_iso_dates_whatever_the_date_style(db) -> None:
    db.execute(text("SET LOCAL DateStyle = 'SQL, DMY'"))
    models.add_signups(db, [uuid.uuid4()], ["pro"], [date(2024, 5, 2)])

    assert ("day", "2024-05-02", 1) in models.read_figures(db)


def test_read_figures_of_an_empty_database(db) -> None:
    assert models.read_figures(db) == []


# the handlers: inbox claim + action + models ---------------------------------------------------
def test_a_redelivered_event_is_counted_once(db, signup_event) -> None:
    handle = exactly_once(SIGNUPS, InboxMessage, consumers.on_user_signed_up)
    event = signup_event(plan="team", signed_up_at=MAY_1)

    handle(db, event, persist=None)
    handle(db, event, persist=None)

    stats = actions.read_stats(db)
    assert (stats.total_users, stats.signups_per_plan["team"]) == (1, 1)
    assert db.scalars(select(InboxMessage.event_id)).all() == [event.id]


def test_one_user_under_two_event_ids_is_counted_once_across_messages(db, signup_event) -> None:
    handle = exactly_once(SIGNUPS, InboxMessage, consumers.on_user_signed_up)
    user_id = uuid.uuid4()
    first = signup_event(plan="pro", signed_up_at=MAY_1, user_id=user_id)
    forged = signup_event(plan="team", signed_up_at=MAY_2, user_id=user_id)

    handle(db, first, persist=None)
    handle(db, forged, persist=None)

    assert actions.read_stats(db) == actions.Stats(
        total_users=1,
        signups_per_plan={"free": 0, "pro": 1, "team": 0},
        signups_per_day={"2024-05-01": 1},
        activated_subscriptions=0,
    )
    assert db.scalar(select(func.count()).select_from(InboxMessage)) == 2


def test_one_user_under_two_event_ids_is_counted_once_within_and_across_batches(
    db, signup_event
) -> None:
    handle = batch_exactly_once(
        SIGNUPS, InboxMessage, consumers.on_user_signed_up, consumers.on_users_signed_up
    )
    user_id, other = uuid.uuid4(), uuid.uuid4()
    first = signup_event(plan="pro", signed_up_at=MAY_1, user_id=user_id)
    same_batch = signup_event(plan="team", signed_up_at=MAY_2, user_id=user_id)
    later_batch = signup_event(plan="free", signed_up_at=MAY_2, user_id=user_id)

    assert handle(db, [first, same_batch, signup_event(user_id=other)], persist=None)
    assert handle(db, [later_batch], persist=None) == [later_batch]

    stats = actions.read_stats(db)
    assert stats.total_users == 2
    assert stats.signups_per_plan == {"free": 0, "pro": 2, "team": 0}
    assert stats.signups_per_day == {"2024-05-01": 2}


def test_one_space_provisioned_under_two_event_ids_is_one_activation(db, provisioned_event) -> None:
    handle = batch_exactly_once(
        ACTIVATIONS, InboxMessage, consumers.on_space_provisioned, consumers.on_spaces_provisioned
    )
    user_id = uuid.uuid4()

    handle(db, [provisioned_event(user_id), provisioned_event(user_id)], persist=None)
    handle(db, [provisioned_event(user_id), provisioned_event()], persist=None)

    assert actions.read_stats(db).activated_subscriptions == 2


def test_the_workers_batch_handler_claims_every_event_and_counts_the_new_ones_once(
    engine, db, signup_event
) -> None:
    worker = bootstrap.consumer_worker(StatsSettings())
    worker.engine.dispose()
    worker.sessions = lambda: db  # type: ignore[assignment, misc, method-assign]
    signups = worker.subscriptions()[0]
    first, second = signup_event(), signup_event()

    assert signups.batch_handler is not None
    assert signups.batch_handler([first, second, first]) == {}
    assert signups.batch_handler([second]) == {}

    assert actions.read_stats(db).total_users == 2
    assert sorted(db.scalars(select(InboxMessage.event_id)).all()) == sorted([first.id, second.id])
