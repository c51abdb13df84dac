from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signup_shared.settings import (
    ServiceSettings,
    amqp_url_field,
    local_database_url,
    renamed_field,
)

PREFIX = "STATS_"


class StatsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service_name: str = "stats"
    database_url: str = local_database_url("stats")
    amqp_url: str = amqp_url_field("stats")
    web_port: int = renamed_field(PREFIX, "web_port", "http_port", 8003)
    consumer_health_port: int = renamed_field(
        PREFIX, "consumer_health_port", "consumer_http_port", 8013
    )
    inbox_prune_interval_seconds: float = 3600.0
    # The consumer process publishes its UserErased confirmations itself (docs/erasure.md),
    # woken at commit (LISTEN outbox); this is its safety poll.
    erasure_relay_interval_seconds: float = 30.0

    # The UserSignedUp version this service reads: its queue is bound to that version's routing
    # key and unbound from the other's at start (STATS_USER_SIGNED_UP_VERSION=1 or 2;
    # switch by restarting, docs/contracts.md). The handler accepts both versions either way.
    user_signed_up_version: int = Field(default=2, ge=1)

    renamed: ClassVar[dict[str, str]] = {
        "http_port": "web_port",
        "consumer_http_port": "consumer_health_port",
    }

    # The old attribute names, read-only, for one release (callers move to the new names).
    @property
    def http_port(self) -> int:
        return self.web_port

    @property
    def consumer_http_port(self) -> int:
        return self.consumer_health_port
