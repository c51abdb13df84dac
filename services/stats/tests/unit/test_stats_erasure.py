"""Erasure in stats: the counts stay, the confirmation goes out once."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from signup_contracts import UserErasureRequested
from signup_shared.events import Envelope
from stats import actions, models

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_confirms_each_user_once_and_touches_no_count(monkeypatch: pytest.MonkeyPatch) -> None:
    erased: set[uuid.UUID] = set()
    outbox: list[Any] = []

    def record_erased(_s: Any, user_id: uuid.UUID, _event_id: uuid.UUID, _now: datetime) -> bool:
        new = user_id not in erased
        erased.add(user_id)
        return new

    monkeypatch.setattr(models, "record_erased", record_erased)
    monkeypatch.setattr(models, "add_event", lambda _s, event: outbox.append(event))
    for name in ("add_signups", "count_users"):
        monkeypatch.setattr(models, name, lambda *_a: pytest.fail("a count changed"))
    request = Envelope.wrap(
        UserErasureRequested(user_id=uuid.uuid4(), requested_at=NOW),
        producer="accounts",
        correlation_id="c",
    )
    confirmation = actions.confirm_erasure(object(), request, NOW)  # type: ignore[arg-type]
    assert confirmation is not None and outbox == [confirmation]
    assert (confirmation.routing_key, confirmation.data.holder) == ("stats.user_erased", "stats")
    assert confirmation.data.user_id == request.data.user_id
    assert actions.confirm_erasure(object(), request, NOW) is None  # type: ignore[arg-type]
    assert len(outbox) == 1
