import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text, update

from signup_shared.messaging.handlers import exactly_once
from stats import actions, consumers
from stats.models import Base, Counter, DailySignups, InboxMessage, PlanSignups

pytestmark = pytest.mark.integration

MAY_1 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MAY_2 = datetime(2024, 5, 2, 23, 59, tzinfo=UTC)


def test_migration_creates_exactly_the_mapped_schema(engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_signups_upsert_one_row_per_plan_and_day(db, signup_event) -> None:
    for plan in ("pro", "pro", "team"):
        actions.record_signup(db, signup_event(plan=plan, signed_up_at=MAY_1))

    assert db.get(Counter, "total_users").value == 3
    assert dict(db.execute(select(PlanSignups.plan, PlanSignups.count)).all()) == {
        "pro": 2,
        "team": 1,
    }
    assert dict(db.execute(select(DailySignups.day, DailySignups.count)).all()) == {
        date(2024, 5, 1): 3,
    }


def test_signups_add_to_the_committed_values_not_to_values_read_earlier(db, signup_event) -> None:
    actions.record_signup(db, signup_event(plan="free", signed_up_at=MAY_1))
    db.execute(update(PlanSignups).values(count=41))
    db.execute(update(DailySignups).values(count=41))
    db.execute(update(Counter).values(value=41))

    actions.record_signups(db, [signup_event(plan="free", signed_up_at=MAY_1)])

    assert db.scalar(select(PlanSignups.count).where(PlanSignups.plan == "free")) == 42
    assert db.scalar(select(DailySignups.count)) == 42
    assert db.get(Counter, "total_users").value == 42


def test_a_batch_of_signups_counts_every_plan_and_day(db, signup_event) -> None:
    actions.record_signups(
        db,
        [
            signup_event(plan="team", signed_up_at=MAY_2),
            signup_event(plan="free", signed_up_at=MAY_1),
            signup_event(plan="team", signed_up_at=MAY_1),
        ],
    )
    actions.record_signups(db, [signup_event(plan="team", signed_up_at=MAY_2)])

    assert actions.read_stats(db) == actions.Stats(
        total_users=4,
        signups_per_plan={"free": 1, "pro": 0, "team": 3},
        signups_per_day={"2024-05-01": 2, "2024-05-02": 2},
        activated_subscriptions=0,
    )


def test_activations_add_their_number(db, provisioned_event) -> None:
    actions.record_activations(db, [provisioned_event() for _ in range(3)])
    actions.record_activation(db, provisioned_event())

    assert actions.read_stats(db).activated_subscriptions == 4


def test_read_stats_after_a_few_records(db, signup_event, provisioned_event) -> None:
    actions.record_signup(db, signup_event(plan="free", signed_up_at=MAY_1))
    actions.record_signup(db, signup_event(plan="pro", signed_up_at=MAY_2))
    actions.record_signup(db, signup_event(plan="pro", signed_up_at=MAY_2))
    actions.record_activation(db, provisioned_event())

    assert actions.read_stats(db) == actions.Stats(
        total_users=3,
        signups_per_plan={"free": 1, "pro": 2, "team": 0},
        signups_per_day={"2024-05-01": 1, "2024-05-02": 2},
        activated_subscriptions=1,
    )


def test_days_are_iso_dates_whatever_the_session_date_style(db, signup_event) -> None:
    db.execute(text("SET LOCAL DateStyle = 'SQL, DMY'"))
    actions.record_signup(db, signup_event(signed_up_at=MAY_2))

    assert actions.read_stats(db).signups_per_day == {"2024-05-02": 1}


def test_read_stats_of_an_empty_database(db) -> None:
    stats = actions.read_stats(db)

    assert (stats.total_users, stats.activated_subscriptions) == (0, 0)
    assert stats.signups_per_plan == {"free": 0, "pro": 0, "team": 0}
    assert stats.signups_per_day == {}


def test_exactly_once_handler_ignores_a_redelivered_duplicate(db, signup_event) -> None:
    handle = exactly_once("stats.user_signed_up", InboxMessage, consumers.on_user_signed_up)
    event = signup_event(plan="team", signed_up_at=MAY_1)

    handle(db, event, persist=None)
    handle(db, event, persist=None)

    stats = actions.read_stats(db)
    assert stats.total_users == 1
    assert stats.signups_per_plan["team"] == 1
    assert stats.signups_per_day == {"2024-05-01": 1}
    assert db.scalars(select(InboxMessage.event_id)).all() == [event.id]


def test_exactly_once_activation_counts_a_republished_event_once(db, provisioned_event) -> None:
    handle = exactly_once("stats.space_provisioned", InboxMessage, consumers.on_space_provisioned)
    event = provisioned_event()
    republished = event.model_copy()

    handle(db, event, persist=None)
    handle(db, republished, persist=None)
    handle(db, provisioned_event(), persist=None)

    assert actions.read_stats(db).activated_subscriptions == 2


def test_forget_handled_events_keeps_recent_ids(db) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    db.add_all(
        [
            InboxMessage(
                consumer="stats.user_signed_up",
                event_id=old,
                received_at=datetime.now(UTC) - timedelta(days=8),
            ),
            InboxMessage(consumer="stats.user_signed_up", event_id=recent),
        ]
    )
    db.flush()

    pruned = actions.forget_handled_events(db, timedelta(days=7))

    assert pruned == 1
    assert db.scalars(select(InboxMessage.event_id)).all() == [recent]
