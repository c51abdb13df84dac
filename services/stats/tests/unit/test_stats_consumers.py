from typing import Any

import pytest

from signup_contracts import UserErasureRequested
from signup_shared.events import SpaceProvisioned, UserSignedUp, UserSignedUpV2
from stats import actions, consumers

SESSION: Any = object()  # the consumers only hand the session on to the actions


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    recorded: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("record_signup", "record_activation", "record_signups", "record_activations"):
        monkeypatch.setattr(actions, name, lambda *args, _n=name: recorded.append((_n, args)))
    return recorded


def test_user_signed_up_is_recorded_as_a_signup(calls, signup_event) -> None:
    event = signup_event()

    consumers.on_user_signed_up(SESSION, event)

    assert calls == [("record_signup", (SESSION, event))]


def test_space_provisioned_is_recorded_as_an_activation(calls, provisioned_event) -> None:
    event = provisioned_event()

    consumers.on_space_provisioned(SESSION, event)

    assert calls == [("record_activation", (SESSION, event))]


def test_batches_go_to_the_aggregating_actions(calls, signup_event, provisioned_event) -> None:
    signups, spaces = [signup_event(), signup_event()], [provisioned_event()]

    signups_step = consumers.on_user_signed_up.batch_step
    spaces_step = consumers.on_space_provisioned.batch_step
    assert signups_step is not None and spaces_step is not None
    signups_step(SESSION, signups)
    spaces_step(SESSION, spaces)

    assert calls == [
        ("record_signups", (SESSION, signups)),
        ("record_activations", (SESSION, spaces)),
    ]


def test_each_subscription_names_its_producer_and_event() -> None:
    assert [(h.producer, h.event_name, h.events) for h in consumers.SUBSCRIPTIONS] == [
        ("accounts", "user_signed_up", (UserSignedUp, UserSignedUpV2)),
        ("provisioning", "space_provisioned", (SpaceProvisioned,)),
        ("accounts", "user_erasure_requested", (UserErasureRequested,)),
    ]
