import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from stats import actions, models
from stats.models import CounterName

SESSION: Any = object()  # the actions only hand the session on to the models


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What the actions asked the models to store, in order."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("add_signups", "count_users"):
        monkeypatch.setattr(models, name, lambda *args, _n=name: calls.append((_n, args)))
    return calls


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """The rows the fake ``models.read_figures`` answers with."""
    rows: list[tuple[str, str, int]] = []
    monkeypatch.setattr(models, "read_figures", lambda session: rows if session is SESSION else [])
    return rows


def test_a_signup_is_stored_with_its_user_plan_and_utc_day(stored, signup_event) -> None:
    event = signup_event(plan="free")

    actions.record_signup(SESSION, event)

    assert stored == [
        ("add_signups", (SESSION, [event.data.user_id], ["free"], [date(2024, 5, 1)]))
    ]


def test_the_day_counted_is_the_utc_day_not_the_local_one(stored, signup_event) -> None:
    new_york_late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

    actions.record_signup(SESSION, signup_event(signed_up_at=new_york_late_evening))

    [(_, (_, _, _, days))] = stored
    assert days == [date(2024, 3, 2)]


def test_a_batch_is_one_store_of_every_signup_in_order(stored, signup_event) -> None:
    may_first, may_second = (datetime(2024, 5, d, 9, 0, tzinfo=UTC) for d in (1, 2))
    events = [
        signup_event("team", may_second),
        signup_event("free", may_first),
        signup_event("team", may_first),
    ]

    actions.record_signups(SESSION, events)

    assert stored == [
        (
            "add_signups",
            (
                SESSION,
                [event.data.user_id for event in events],
                ["team", "free", "team"],
                [date(2024, 5, 2), date(2024, 5, 1), date(2024, 5, 1)],
            ),
        )
    ]


def test_signups_of_one_user_under_two_event_ids_are_both_handed_to_the_natural_key(
    stored, signup_event
) -> None:
    user_id = uuid.uuid4()
    first, again = signup_event("pro", user_id=user_id), signup_event("team", user_id=user_id)

    actions.record_signups(SESSION, [first, again])

    [(_, (_, user_ids, plans, _))] = stored
    assert (user_ids, plans) == ([user_id, user_id], ["pro", "team"])


def test_activations_count_the_users_whose_spaces_were_provisioned(
    stored, provisioned_event
) -> None:
    events = [provisioned_event() for _ in range(3)]

    actions.record_activations(SESSION, events)
    actions.record_activation(SESSION, events[0])

    user_ids = [event.data.user_id for event in events]
    assert stored == [
        ("count_users", (SESSION, CounterName.ACTIVATED_SUBSCRIPTIONS, user_ids)),
        ("count_users", (SESSION, CounterName.ACTIVATED_SUBSCRIPTIONS, user_ids[:1])),
    ]


def test_an_empty_batch_stores_nothing(stored) -> None:
    actions.record_signups(SESSION, [])
    actions.record_activations(SESSION, [])

    assert stored == []


def test_read_stats_assembles_the_figures_from_the_rows(figures) -> None:
    figures += [
        ("counter", "total_users", 5),
        ("counter", "activated_subscriptions", 3),
        ("plan", "free", 4),
        ("plan", "team", 1),
        ("day", "2024-05-02", 2),
        ("day", "2024-04-30", 3),
    ]

    stats = actions.read_stats(SESSION)

    assert stats == actions.Stats(
        total_users=5,
        signups_per_plan={"free": 4, "pro": 0, "team": 1},
        signups_per_day={"2024-04-30": 3, "2024-05-02": 2},
        activated_subscriptions=3,
    )
    assert list(stats.signups_per_day) == ["2024-04-30", "2024-05-02"]


def test_read_stats_of_no_figures_is_all_zeros(figures) -> None:
    stats = actions.read_stats(SESSION)

    assert stats == actions.Stats(
        total_users=0,
        signups_per_plan={"free": 0, "pro": 0, "team": 0},
        signups_per_day={},
        activated_subscriptions=0,
    )


def test_plans_match_the_event_contract() -> None:
    assert actions.PLANS == ("free", "pro", "team")
