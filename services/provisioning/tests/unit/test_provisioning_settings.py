from pathlib import Path

import pytest

from provisioning.settings import ProvisioningSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (
        "PROVISIONING_HTTP_PORT",
        "PROVISIONING_SPACES_ROOT",
        "PROVISIONING_DATABASE_URL",
        "PROVISIONING_RELAY_BATCH_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_work_on_a_developer_machine():
    settings = ProvisioningSettings()

    assert settings.service_name == "provisioning"
    assert settings.database_url == (
        "postgresql+psycopg://provisioning:local-dev-provisioning@127.0.0.1:5432/provisioning"
    )
    assert settings.consumer_health_port == 8002
    assert settings.spaces_root == Path("var/spaces")
    assert (settings.relay_batch_size, settings.relay_poll_interval) == (500, 30.0)
    assert settings.inbox_prune_interval_seconds == 3600.0


def test_environment_overrides_with_the_service_prefix(monkeypatch):
    monkeypatch.setenv("PROVISIONING_SPACES_ROOT", "/srv/spaces")
    monkeypatch.setenv("PROVISIONING_HTTP_PORT", "9102")

    settings = ProvisioningSettings()

    assert (settings.spaces_root, settings.consumer_health_port) == (Path("/srv/spaces"), 9102)
