from typing import Any

import pytest

from audit import actions, consumers
from signup_shared.events import UserSignedUp, UserSignedUpV2

SESSION: Any = object()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    recorded: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("record_signup", "record_signups"):
        monkeypatch.setattr(actions, name, lambda *args, _n=name: recorded.append((_n, args)))
    return recorded


def test_a_signup_is_recorded(calls, signup_event) -> None:
    event = signup_event()

    consumers.on_user_signed_up(SESSION, event)

    assert calls == [("record_signup", (SESSION, event))]


def test_a_batch_goes_to_the_batch_action(calls, signup_event) -> None:
    events = [signup_event(), signup_event(version=2)]
    step = consumers.on_user_signed_up.batch_step
    assert step is not None

    step(SESSION, events)

    assert calls == [("record_signups", (SESSION, events))]


def test_both_versions_of_user_signed_up_from_accounts_are_subscribed() -> None:
    [subscription] = consumers.SUBSCRIPTIONS

    assert subscription.producer == "accounts"
    assert subscription.events == (UserSignedUp, UserSignedUpV2)
