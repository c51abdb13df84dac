from typing import Any

import pytest

from signup_shared.events import SpaceProvisioned, UserSignedUp
from stats import actions, consumers


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    recorded: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("record_signup", "record_activation", "record_signups", "record_activations"):
        monkeypatch.setattr(actions, name, lambda *args, _n=name: recorded.append((_n, args)))
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


def test_batches_go_to_the_aggregating_actions(
    calls, fake_session, signup_event, provisioned_event
) -> None:
    signups, spaces = [signup_event(), signup_event()], [provisioned_event()]

    consumers.on_user_signed_up.batch_step(fake_session, signups)
    consumers.on_space_provisioned.batch_step(fake_session, spaces)

    assert calls == [
        ("record_signups", (fake_session, signups)),
        ("record_activations", (fake_session, spaces)),
    ]


def test_each_subscription_names_its_producer_and_event() -> None:
    assert [(h.producer, h.event_name, h.events) for h in consumers.SUBSCRIPTIONS] == [
        ("accounts", "user_signed_up", (UserSignedUp,)),
        ("provisioning", "space_provisioned", (SpaceProvisioned,)),
    ]
