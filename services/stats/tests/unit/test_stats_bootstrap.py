import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from signup_shared.events import SpaceProvisioned, UserSignedUp
from stats import bootstrap, consumers
from stats.settings import StatsSettings


@pytest.fixture
def settings() -> StatsSettings:
    return StatsSettings(retry_delays=[1_000, 5_000], delivery_limit=4)


def test_queues_are_named_after_the_service_and_bound_to_the_producers_events(settings) -> None:
    queues = bootstrap.queues(settings)

    assert [(q.name, q.routing_key) for q in queues] == [
        ("stats.user_signed_up", "accounts.user_signed_up"),
        ("stats.space_provisioned", "provisioning.space_provisioned"),
    ]
    assert all(q.retry_delays_ms == (1_000, 5_000) and q.delivery_limit == 4 for q in queues)


def test_each_queue_accepts_only_its_event(settings) -> None:
    subscriptions = bootstrap.subscriptions(settings, sessions=None)  # type: ignore[arg-type]

    assert [(s.queue.name, s.events) for s in subscriptions] == [
        ("stats.user_signed_up", (UserSignedUp,)),
        ("stats.space_provisioned", (SpaceProvisioned,)),
    ]


def test_inbox_pruner_prunes_with_the_configured_retention(
    settings, fake_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, timedelta]] = []
    monkeypatch.setattr(consumers, "prune_inbox", lambda s, r: seen.append((s, r)) or 2)

    @contextlib.contextmanager
    def sessions() -> Iterator[Any]:
        yield fake_session

    pruned = bootstrap.inbox_pruner(settings, sessions)()  # type: ignore[arg-type]

    assert pruned == 2
    assert seen == [(fake_session, timedelta(days=settings.inbox_retention_days))]
