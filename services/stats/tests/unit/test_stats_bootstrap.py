from types import MethodType

import pytest

from signup_contracts import UserErasureRequested
from signup_shared.events import SpaceProvisioned, UserSignedUp, UserSignedUpV2
from signup_shared.outbox.relay import OutboxRelay
from stats import bootstrap
from stats.models import InboxMessage
from stats.settings import StatsSettings


@pytest.fixture
def settings() -> StatsSettings:
    return StatsSettings(
        retry_delays=[1_000, 5_000],
        delivery_limit=4,
        consumer_batch_size=7,
        consumer_health_port=9013,
        inbox_prune_interval_seconds=60.0,
    )


def test_queues_are_named_after_the_service_and_bound_to_the_producers_events(settings) -> None:
    queues = bootstrap.queues(settings)

    assert [(q.name, q.routing_key, q.other_keys) for q in queues] == [
        ("stats.user_signed_up", "accounts.user_signed_up.v2", ("accounts.user_signed_up",)),
        ("stats.space_provisioned", "provisioning.space_provisioned", ()),  # one version only
        ("stats.user_erasure_requested", "accounts.user_erasure_requested", ()),
    ]
    assert all(q.retry_delays_ms == (1_000, 5_000) and q.delivery_limit == 4 for q in queues)


def test_the_worker_consumes_each_queue_with_its_event_in_batches(settings) -> None:
    worker = bootstrap.consumer_worker(settings)
    runtime = worker.runtime()

    assert [(s.queue.name, s.events) for s in runtime.subscriptions] == [
        ("stats.user_signed_up", (UserSignedUp, UserSignedUpV2)),
        ("stats.space_provisioned", (SpaceProvisioned,)),
        ("stats.user_erasure_requested", (UserErasureRequested,)),
    ]
    assert all(s.batch_handler is not None for s in runtime.subscriptions[:2])
    assert (runtime.service, runtime.batch_size) == ("stats", 7)
    assert (worker.health_port, worker.inbox_model) == (9013, InboxMessage)
    assert [job.interval for job in worker.all_jobs()] == [60.0, 3600.0]
    # the erasure relay waits for commits (LISTEN) instead of polling every second
    [relay] = worker.loops
    assert relay.name == "stats.relay_erasures"
    assert isinstance(relay.run, MethodType) and relay.run.__func__ is OutboxRelay.follow
    assert relay.run.__self__.poll_interval == 30.0
    worker.engine.dispose()
