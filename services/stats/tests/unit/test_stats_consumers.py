from datetime import timedelta
from typing import Any

import pytest

from stats import actions, consumers


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    recorded: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("record_signup", "record_activation"):
        monkeypatch.setattr(actions, name, lambda *args, _n=name: recorded.append((_n, args)))
    monkeypatch.setattr(
        actions, "forget_handled_events",
        lambda *args: recorded.append(("forget_handled_events", args)) or 4,
    )
    return recorded


def test_user_signed_up_is_recorded_as_a_signup(calls, fake_session, signup_event) -> None:
    event = signup_event()

    consumers.on_user_signed_up(fake_session, event)

    assert calls == [("record_signup", (fake_session, event))]
    assert fake_session.commits == 0


def test_space_provisioned_is_recorded_as_an_activation(
    calls, fake_session, provisioned_event
) -> None:
    event = provisioned_event()

    consumers.on_space_provisioned(fake_session, event)

    assert calls == [("record_activation", (fake_session, event))]
    assert fake_session.commits == 0


def test_prune_inbox_runs_the_action_in_its_own_committed_transaction(
    calls, fake_session
) -> None:
    pruned = consumers.prune_inbox(fake_session, timedelta(days=7))

    assert pruned == 4
    assert calls == [("forget_handled_events", (fake_session, timedelta(days=7)))]
    assert fake_session.commits == 1
