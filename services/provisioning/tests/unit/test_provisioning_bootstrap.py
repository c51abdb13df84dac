from provisioning import bootstrap
from provisioning.adapters.storage import FakeSpaceStorage
from provisioning.models import InboxMessage
from provisioning.settings import ProvisioningSettings
from signup_contracts import UserErasureRequested
from signup_shared.events import UserSignedUp, UserSignedUpV2


def test_consumes_user_signed_up_from_accounts_on_its_own_queue():
    settings = ProvisioningSettings(retry_delays=[500, 5_000], delivery_limit=4)

    queue, erasures = bootstrap.queues(settings)

    assert queue.name == "provisioning.user_signed_up"
    assert queue.routing_key == "accounts.user_signed_up.v2"
    assert queue.other_keys == ("accounts.user_signed_up",)
    v1 = bootstrap.queues(ProvisioningSettings(user_signed_up_version=1))[0]
    assert (v1.name, v1.routing_key) == ("provisioning.user_signed_up", "accounts.user_signed_up")
    assert (queue.retry_delays_ms, queue.delivery_limit) == ((500, 5_000), 4)
    assert erasures.name == "provisioning.user_erasure_requested"
    assert erasures.routing_key == "accounts.user_erasure_requested"


def test_the_worker_subscribes_that_queue_to_user_signed_up_with_the_storage():
    settings = ProvisioningSettings(consumer_health_port=9002)
    storage = FakeSpaceStorage()

    worker = bootstrap.consumer_worker(settings, storage)
    runtime = worker.runtime()

    subscription, erasures = runtime.subscriptions
    assert subscription.queue == bootstrap.queues(settings)[0]
    assert subscription.events == (UserSignedUp, UserSignedUpV2)
    assert erasures.events == (UserErasureRequested,)
    assert runtime.service == "provisioning"
    assert worker.dependencies == {"storage": storage}
    assert (worker.health_port, worker.inbox_model) == (9002, InboxMessage)
    worker.engine.dispose()
