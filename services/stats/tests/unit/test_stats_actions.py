from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Delete

from stats import actions


def sql(statement: object) -> str:
    return " ".join(str(statement.compile(dialect=postgresql.dialect())).split())  # type: ignore[attr-defined]


def test_counter_increments_are_atomic_upserts_adding_to_the_stored_count() -> None:
    assert "ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value" in sql(
        actions.ADD_TO_COUNTER
    )
    signups = sql(actions.RECORD_SIGNUPS)
    assert "ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value" in signups
    assert "ON CONFLICT (plan) DO UPDATE SET count = plan_signups.count + excluded.count" in signups
    assert "ON CONFLICT (day) DO UPDATE SET count = daily_signups.count + excluded.count" in signups


def test_plans_and_days_are_upserted_only_behind_the_total_in_sorted_order() -> None:
    signups = sql(actions.RECORD_SIGNUPS)

    assert signups.count("WHERE EXISTS (SELECT FROM total) ORDER BY added.") == 2
    assert "ORDER BY added.plan" in signups and "ORDER BY added.day" in signups


def test_record_signup_is_one_statement_counting_total_plan_and_day(
    fake_session, signup_event
) -> None:
    actions.record_signup(fake_session, signup_event(plan="free"))

    assert fake_session.executed == [actions.RECORD_SIGNUPS]
    assert fake_session.parameters == [
        {
            "counter": "total_users",
            "total": 1,
            "plans": ["free"],
            "plan_counts": [1],
            "days": [date(2024, 5, 1)],
            "day_counts": [1],
        }
    ]


def test_record_signup_counts_the_utc_day_not_the_local_one(fake_session, signup_event) -> None:
    new_york_late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

    actions.record_signup(fake_session, signup_event(signed_up_at=new_york_late_evening))

    assert fake_session.parameters[0]["days"] == [date(2024, 3, 2)]


def test_record_signup_leaves_the_transaction_to_the_caller(fake_session, signup_event) -> None:
    actions.record_signup(fake_session, signup_event())

    assert (fake_session.commits, fake_session.rollbacks) == (0, 0)


def test_a_batch_of_signups_is_one_statement_adding_each_key_its_count_in_order(
    fake_session, signup_event
) -> None:
    may_first, may_second = (datetime(2024, 5, d, 9, 0, tzinfo=UTC) for d in (1, 2))
    events = [
        signup_event("team", may_second),
        signup_event("free", may_first),
        signup_event("team", may_first),
    ]

    actions.record_signups(fake_session, events)

    assert fake_session.executed == [actions.RECORD_SIGNUPS]
    assert fake_session.parameters == [
        {
            "counter": "total_users",
            "total": 3,
            "plans": ["free", "team"],
            "plan_counts": [1, 2],
            "days": [date(2024, 5, 1), date(2024, 5, 2)],
            "day_counts": [2, 1],
        }
    ]
    assert fake_session.commits == 0


def test_a_batch_of_activations_is_one_upsert_adding_their_number(
    fake_session, provisioned_event
) -> None:
    actions.record_activations(fake_session, [provisioned_event() for _ in range(4)])

    assert fake_session.executed == [actions.ADD_TO_COUNTER]
    assert fake_session.parameters == [{"counter": "activated_subscriptions", "by": 4}]


def test_an_empty_batch_touches_nothing(fake_session) -> None:
    actions.record_signups(fake_session, [])
    actions.record_activations(fake_session, [])

    assert fake_session.executed == []


def test_record_activation_increments_only_activated_subscriptions(
    fake_session, provisioned_event
) -> None:
    actions.record_activation(fake_session, provisioned_event())

    assert fake_session.executed == [actions.ADD_TO_COUNTER]
    assert fake_session.parameters == [{"counter": "activated_subscriptions", "by": 1}]
    assert fake_session.commits == 0


def test_read_stats_reads_all_figures_in_one_statement(fake_session) -> None:
    actions.read_stats(fake_session)

    [query] = fake_session.executed
    compiled = sql(query)
    assert compiled.count("UNION ALL") == 2
    assert all(table in compiled for table in ("counters", "plan_signups", "daily_signups"))


def test_read_stats_assembles_the_figures_from_the_rows(fake_session) -> None:
    fake_session.rows = [
        ("counter", "total_users", 5),
        ("counter", "activated_subscriptions", 3),
        ("plan", "free", 4),
        ("plan", "team", 1),
        ("day", "2024-05-02", 2),
        ("day", "2024-04-30", 3),
    ]

    stats = actions.read_stats(fake_session)

    assert stats == actions.Stats(
        total_users=5,
        signups_per_plan={"free": 4, "pro": 0, "team": 1},
        signups_per_day={"2024-04-30": 3, "2024-05-02": 2},
        activated_subscriptions=3,
    )
    assert list(stats.signups_per_day) == ["2024-04-30", "2024-05-02"]


def test_read_stats_of_an_empty_database_is_all_zeros(fake_session) -> None:
    stats = actions.read_stats(fake_session)

    assert stats.total_users == 0
    assert stats.activated_subscriptions == 0
    assert stats.signups_per_plan == {"free": 0, "pro": 0, "team": 0}
    assert stats.signups_per_day == {}


def test_forget_handled_events_deletes_old_inbox_rows(fake_session) -> None:
    fake_session.rowcount = 7

    pruned = actions.forget_handled_events(fake_session, timedelta(days=7))

    [statement] = fake_session.executed
    assert isinstance(statement, Delete)
    assert statement.table.name == "inbox"
    assert "WHERE inbox.received_at < now() - " in sql(statement)
    assert pruned == 7


def test_plans_match_the_event_contract() -> None:
    assert actions.PLANS == ("free", "pro", "team")
