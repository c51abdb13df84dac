"""The erasure and key actions with their model functions replaced by fakes."""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from accounts import erasure, erasure_models, keys
from signup_contracts import UserErased, is_redacted, seal_envelope
from signup_contracts.testing import user_signed_up_v2
from signup_shared.errors import PermanentError
from signup_shared.events import Envelope, parse_envelope

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
USER = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
SESSION: Any = object()


@dataclass
class FakeStore:
    users: set[uuid.UUID] = field(default_factory=lambda: {USER})
    erasures: dict[uuid.UUID, Any] = field(default_factory=dict)
    confirmations: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    outbox: list[Any] = field(default_factory=list)
    signups: dict[int, dict[str, Any]] = field(default_factory=dict)
    api_keys: dict[str, Any] = field(default_factory=dict)
    data_keys: dict[uuid.UUID, bytes] = field(default_factory=lambda: {USER: b"k" * 32})

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeStore":
        for name in (
            "lock_user",
            "erasure_of",
            "record_erasure",
            "signup_payloads",
            "rewrite_payload",
            "confirm",
            "confirmed_holders",
            "complete",
            "add_key",
            "keys",
            "key_by_id",
            "delete_user_key",
            "user_keys",
        ):
            monkeypatch.setattr(erasure_models, name, getattr(self, name))
        return self

    def lock_user(self, _s: Any, user_id: uuid.UUID) -> bool:
        return user_id in self.users

    def erasure_of(self, _s: Any, user_id: uuid.UUID) -> Any:
        return self.erasures.get(user_id)

    def record_erasure(self, _s: Any, user_id: uuid.UUID, by: str, when: datetime, events: Any):
        self.erasures[user_id] = SimpleNamespace(
            user_id=user_id, requested_at=when, requested_by=by, completed_at=None
        )
        self.outbox.extend(events)

    def signup_payloads(self, _s: Any, user_id: uuid.UUID) -> list[tuple[int, dict[str, Any]]]:
        return list(self.signups.items())

    def rewrite_payload(self, _s: Any, position: int, payload: dict[str, Any]) -> None:
        self.signups[position] = payload

    def confirm(self, _s: Any, user_id: uuid.UUID, holder: str, _when: datetime) -> bool:
        found = self.confirmations.setdefault(user_id, set())
        new = holder not in found
        found.add(holder)
        return new

    def confirmed_holders(self, _s: Any, user_id: uuid.UUID) -> list[str]:
        return sorted(self.confirmations.get(user_id, set()))

    def complete(self, _s: Any, user_id: uuid.UUID, when: datetime) -> bool:
        if self.erasures[user_id].completed_at is not None:
            return False
        self.erasures[user_id].completed_at = when
        return True

    def add_key(self, _s: Any, key: Any) -> None:
        self.api_keys[key.id] = key

    def keys(self, _s: Any) -> list[Any]:
        return list(self.api_keys.values())

    def key_by_id(self, _s: Any, key_id: str) -> Any:
        return self.api_keys.get(key_id)

    def delete_user_key(self, _s: Any, user_id: uuid.UUID) -> bool:
        return self.data_keys.pop(user_id, None) is not None

    def user_keys(self, _s: Any, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        return {u: self.data_keys[u] for u in user_ids if u in self.data_keys}


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    return FakeStore().install(monkeypatch)


def confirmation(holder: str, producer: str | None = None) -> Envelope[Any]:
    return Envelope.wrap(
        UserErased(user_id=USER, holder=holder, erased_at=NOW),
        producer=producer or holder,
        correlation_id="c",
    )


def test_request_records_redacts_emits_and_confirms_accounts(store: FakeStore) -> None:
    signup = user_signed_up_v2(user_id=USER, email="ada@example.com", full_name="Ada L")
    store.signups[7] = json.loads(signup.to_json())
    state, created = erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c", now=NOW)
    assert created and state.confirmed == ("accounts",)
    assert state.waiting_for == ("notifications", "provisioning", "stats")
    [event] = store.outbox
    assert (event.type, event.routing_key, event.data.user_id) == (
        "UserErasureRequested",
        "accounts.user_erasure_requested",
        USER,
    )
    redacted = parse_envelope(json.dumps(store.signups[7]))
    assert is_redacted(redacted.data) and "Ada" not in json.dumps(store.signups[7])
    assert store.data_keys == {}  # the key is deleted: every sealed copy is unreadable
    again, created = erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c")
    assert not created and again.requested_at == NOW and len(store.outbox) == 1


def test_a_sealed_outbox_copy_is_left_as_it_is_and_its_key_deleted(store: FakeStore) -> None:
    signup = user_signed_up_v2(user_id=USER, email="ada@example.com", full_name="Ada L")
    sealed = json.loads(seal_envelope(signup, store.data_keys[USER]).to_json())
    store.signups[8] = sealed
    erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c", now=NOW)
    assert store.signups[8] == sealed and USER not in store.data_keys


def test_data_keys_answers_the_keys_that_still_exist(store: FakeStore) -> None:
    other = uuid.uuid4()
    assert erasure.data_keys(SESSION, [USER, other, USER]) == {USER: b"k" * 32}
    erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c", now=NOW)
    assert erasure.data_keys(SESSION, [USER]) == {}


def test_unknown_user(store: FakeStore) -> None:
    with pytest.raises(erasure.UnknownUserError):
        erasure.request_erasure(SESSION, uuid.uuid4(), "privacy", correlation_id="c")


def test_complete_when_every_holder_confirmed(store: FakeStore) -> None:
    erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c", now=NOW)
    assert not erasure.confirm_erasure(SESSION, confirmation("notifications"), now=NOW)
    assert not erasure.confirm_erasure(SESSION, confirmation("stats"), now=NOW)
    assert erasure.confirm_erasure(SESSION, confirmation("provisioning"), now=NOW)
    assert not erasure.confirm_erasure(SESSION, confirmation("provisioning"), now=NOW)
    state = erasure.erasure_state(SESSION, USER)
    assert state is not None and state.status is erasure.ErasureStatus.COMPLETE


@pytest.mark.parametrize(
    "event", [confirmation("billing"), confirmation("stats", producer="notifications")]
)
def test_a_confirmation_from_no_holder_is_permanent(store: FakeStore, event: Any) -> None:
    erasure.request_erasure(SESSION, USER, "privacy", correlation_id="c", now=NOW)
    with pytest.raises(PermanentError):
        erasure.confirm_erasure(SESSION, event)


def test_a_confirmation_of_no_erasure_is_permanent(store: FakeStore) -> None:
    with pytest.raises(PermanentError, match="no erasure"):
        erasure.confirm_erasure(SESSION, confirmation("stats"))


def test_create_key_returns_a_token_once_and_stores_its_hash(store: FakeStore) -> None:
    issued = keys.create_key(SESSION, "crm", ["users:read"], valid_days=90, now=NOW)
    assert issued.token.startswith(f"sk_crm_{issued.key_id}_")
    stored = store.api_keys[issued.key_id]
    assert stored.secret_sha256 == keys.digest(issued.token.rsplit("_", 1)[1])
    assert issued.token.rsplit("_", 1)[1] not in repr(vars(stored))
    assert issued.expires_at == NOW + timedelta(days=90)
    assert keys.authenticate(SESSION, issued.token, keys.Scope.USERS_READ, NOW).client == "crm"


@pytest.mark.parametrize(
    ("client", "scopes", "days", "reason"),
    [
        ("CRM!", ["users:read"], None, "client"),
        ("crm", [], None, "scopes"),
        ("crm", ["users:delete"], None, "scopes"),
        ("crm", ["users:read"], 0, "at least one day"),
    ],
)
def test_create_key_refusals(
    store: FakeStore, client: str, scopes: list[str], days: int | None, reason: str
) -> None:
    with pytest.raises(keys.KeyRefusedError, match=reason):
        keys.create_key(SESSION, client, scopes, days, now=NOW)


def test_a_third_valid_key_is_refused(store: FakeStore) -> None:
    keys.create_key(SESSION, "crm", ["users:read"], None, now=NOW)
    keys.create_key(SESSION, "crm", ["users:read"], None, now=NOW)
    with pytest.raises(keys.KeyRefusedError, match="revoke the old one"):
        keys.create_key(SESSION, "crm", ["users:read"], None, now=NOW)
    keys.create_key(SESSION, "erp", ["users:read"], None, now=NOW)  # another client may
