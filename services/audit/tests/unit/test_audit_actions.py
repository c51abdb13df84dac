"""audit's rules with the models faked: what is stored for a signup, once per user."""

import uuid
from typing import Any

import pytest

from audit import actions, models

SESSION: Any = object()


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, object]]]:
    calls: list[list[dict[str, object]]] = []

    def add_users(session: object, rows: list[dict[str, object]]) -> int:
        assert session is SESSION
        calls.append(rows)
        return len(rows)

    monkeypatch.setattr(models, "add_users", add_users)
    return calls


def test_a_signup_is_stored_with_its_user_first_event_plan_and_time(stored, signup_event) -> None:
    event = signup_event()

    actions.record_signup(SESSION, event)

    assert stored == [
        [
            {
                "user_id": event.data.user_id,
                "first_event_id": event.id,
                "plan": event.data.plan,
                "signed_up_at": event.data.signed_up_at,
            }
        ]
    ]


def test_a_v2_signup_is_stored_alike(stored, signup_event) -> None:
    event = signup_event(version=2)

    actions.record_signup(SESSION, event)

    assert (
        stored[0][0]["user_id"] == event.data.user_id and stored[0][0]["first_event_id"] == event.id
    )


def test_a_batch_naming_one_user_twice_stores_them_once_with_the_first_event(
    stored, signup_event
) -> None:
    user = uuid.uuid4()
    first, again, other = signup_event(user), signup_event(user), signup_event()

    actions.record_signups(SESSION, [first, again, other])

    assert [row["first_event_id"] for row in stored[0]] == [first.id, other.id]


def test_an_empty_batch_is_handed_on_empty(stored) -> None:
    actions.record_signups(SESSION, [])

    assert stored == [[]]


def test_count_users_reads_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "count_users", lambda session: 1500)

    assert actions.count_users(SESSION) == 1500
