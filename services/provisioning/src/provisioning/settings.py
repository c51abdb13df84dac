from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signup_shared.settings import (
    ServiceSettings,
    amqp_url_field,
    local_database_url,
    renamed_field,
)

PREFIX = "PROVISIONING_"


class ProvisioningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service_name: str = "provisioning"
    database_url: str = local_database_url("provisioning")
    amqp_url: str = amqp_url_field("provisioning")
    consumer_health_port: int = renamed_field(PREFIX, "consumer_health_port", "http_port", 8002)
    spaces_root: Path = Path("var/spaces")
    relay_health_port: int = renamed_field(PREFIX, "relay_health_port", "relay_http_port", 8022)
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = renamed_field(
        PREFIX, "relay_poll_interval_seconds", "relay_poll_interval", 30.0
    )
    inbox_prune_interval_seconds: float = 3600.0

    # The UserSignedUp version this service reads: its queue is bound to that version's routing
    # key and unbound from the other's at start (PROVISIONING_USER_SIGNED_UP_VERSION=1 or 2;
    # switch by restarting, docs/contracts.md). The handler accepts both versions either way.
    user_signed_up_version: int = Field(default=2, ge=1)

    renamed: ClassVar[dict[str, str]] = {
        "http_port": "consumer_health_port",
        "relay_http_port": "relay_health_port",
        "relay_poll_interval": "relay_poll_interval_seconds",
    }

    # The old attribute names, read-only, for one release (callers move to the new names).
    @property
    def http_port(self) -> int:
        return self.consumer_health_port

    @property
    def relay_http_port(self) -> int:
        return self.relay_health_port

    @property
    def relay_poll_interval(self) -> float:
        return self.relay_poll_interval_seconds
