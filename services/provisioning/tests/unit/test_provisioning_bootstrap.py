from sqlalchemy.orm import sessionmaker

from provisioning import bootstrap
from provisioning.adapters.storage import FakeSpaceStorage
from provisioning.settings import ProvisioningSettings
from signup_shared.events import UserSignedUp


def test_consumes_user_signed_up_from_accounts_on_its_own_queue():
    settings = ProvisioningSettings(retry_delays=[500, 5_000], delivery_limit=4)

    queue = bootstrap.user_signed_up_queue(settings)

    assert queue.name == "provisioning.user_signed_up"
    assert queue.routing_key == "accounts.user_signed_up"
    assert (queue.retry_delays_ms, queue.delivery_limit) == ((500, 5_000), 4)


def test_runtime_subscribes_that_queue_to_user_signed_up_only():
    settings = ProvisioningSettings()

    runtime = bootstrap.consumer(settings, sessionmaker(), FakeSpaceStorage())

    [subscription] = runtime.subscriptions
    assert subscription.queue == bootstrap.user_signed_up_queue(settings)
    assert subscription.events == (UserSignedUp,)
    assert runtime.service == "provisioning"
