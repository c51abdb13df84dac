"""Erasure in notifications, with the model functions replaced by fakes."""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications import actions, erasure_models, models
from signup_contracts import UserErasureRequested, redact_user_signed_up
from signup_shared.events import Envelope, UserSignedUp, parse_envelope

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SESSION: Any = object()
SignedUp = Callable[..., Envelope[UserSignedUp]]


@dataclass
class FakeStore:
    """Welcome claims, notifications by user, erased users and the outbox, as the tables do."""

    welcomed: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    erased: set[uuid.UUID] = field(default_factory=set)
    outbox: list[Envelope[Any]] = field(default_factory=list)

    def claim_welcomes(
        self, _s: Any, firsts: dict[uuid.UUID, uuid.UUID], _now: datetime
    ) -> set[uuid.UUID]:
        claimed = {user for user in firsts if user not in self.welcomed}
        self.welcomed |= {user: firsts[user] for user in claimed}
        return claimed

    def erase_user(
        self, _s: Any, user_id: uuid.UUID, event_id: uuid.UUID, _now: datetime
    ) -> tuple[bool, int]:
        self.welcomed.setdefault(user_id, event_id)
        before = len(self.notifications)
        self.notifications = [n for n in self.notifications if n["user_id"] != user_id]
        new = user_id not in self.erased
        self.erased.add(user_id)
        return new, before - len(self.notifications)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(models, "claim_welcomes", fake.claim_welcomes)
    monkeypatch.setattr(
        models, "add_notifications", lambda _s, rows: fake.notifications.extend(rows)
    )
    monkeypatch.setattr(erasure_models, "erase_user", fake.erase_user)
    monkeypatch.setattr(erasure_models, "add_to_outbox", lambda _s, e: fake.outbox.append(e))
    return fake


def request(user_id: uuid.UUID) -> Envelope[UserErasureRequested]:
    return Envelope.wrap(
        UserErasureRequested(user_id=user_id, requested_at=NOW),
        producer="accounts",
        correlation_id="corr-e",
    )


def test_erasure_deletes_what_is_owed_and_confirms_once(store: FakeStore, signed_up: SignedUp):
    mine, other = signed_up(), signed_up(email="grace@example.com")
    actions.owe_welcome(SESSION, [mine, other], NOW)
    assert len(store.notifications) == 4
    confirmation = actions.erase_user(SESSION, request(mine.data.user_id), NOW)
    assert confirmation is not None
    assert confirmation.routing_key == "notifications.user_erased"
    assert confirmation.data.holder == confirmation.producer == "notifications"
    assert {n["user_id"] for n in store.notifications} == {other.data.user_id}
    assert store.outbox == [confirmation]
    assert actions.erase_user(SESSION, request(mine.data.user_id), NOW) is None
    assert store.outbox == [confirmation]


def test_a_signup_arriving_after_the_erasure_owes_nothing(store: FakeStore, signed_up: SignedUp):
    event = signed_up()
    actions.erase_user(SESSION, request(event.data.user_id), NOW)
    actions.owe_welcome(SESSION, [event], NOW)
    assert store.notifications == []


def test_a_redacted_signup_owes_nothing(store: FakeStore, signed_up: SignedUp):
    event = signed_up()
    redacted = parse_envelope(json.dumps(redact_user_signed_up(json.loads(event.to_json()))))
    actions.owe_welcome(SESSION, [redacted], NOW)
    assert store.notifications == [] and store.welcomed == {}
