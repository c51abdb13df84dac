from provisioning import actions, consumers
from provisioning.adapters.storage import FakeSpaceStorage
from signup_shared.testing import FakeSession


def test_user_signed_up_provisions_the_space_with_the_given_storage(signup_event, monkeypatch):
    calls = []
    monkeypatch.setattr(actions, "provision_space", lambda *args: calls.append(args))
    session, storage, event = FakeSession(), FakeSpaceStorage(), signup_event()

    consumers.on_user_signed_up(session, event, storage=storage)

    assert calls == [(session, storage, event)]
