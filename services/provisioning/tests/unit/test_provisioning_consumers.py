from typing import Any

from provisioning import actions, consumers
from provisioning.adapters.storage import FakeSpaceStorage

SESSION: Any = object()  # the consumer only hands the session on to the action


def test_user_signed_up_provisions_the_space_with_the_given_storage(signup_event, monkeypatch):
    calls = []
    monkeypatch.setattr(actions, "provision_space", lambda *args: calls.append(args))
    storage, event = FakeSpaceStorage(), signup_event()

    consumers.on_user_signed_up(SESSION, event, storage=storage)

    assert calls == [(SESSION, storage, event)]
