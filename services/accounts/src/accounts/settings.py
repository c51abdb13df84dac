import json
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from signup_shared.settings import (
    ServiceSettings,
    amqp_url_field,
    local_database_url,
    renamed_field,
)

PREFIX = "ACCOUNTS_"


class AccountsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service_name: str = "accounts"
    database_url: str = local_database_url("accounts")
    amqp_url: str = amqp_url_field("accounts")
    web_port: int = renamed_field(PREFIX, "web_port", "http_port", 8000)
    consumer_health_port: int = renamed_field(
        PREFIX, "consumer_health_port", "consumer_http_port", 8010
    )
    max_body_bytes: int = 16 * 1024
    relay_health_port: int = renamed_field(PREFIX, "relay_health_port", "relay_http_port", 8020)
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = renamed_field(
        PREFIX, "relay_poll_interval_seconds", "relay_poll_interval", 30.0
    )

    renamed: ClassVar[dict[str, str]] = {
        "http_port": "web_port",
        "consumer_http_port": "consumer_health_port",
        "relay_http_port": "relay_health_port",
        "relay_poll_interval": "relay_poll_interval_seconds",
    }

    # The old attribute names, read-only, for one release (callers move to the new names).
    @property
    def http_port(self) -> int:
        return self.web_port

    @property
    def consumer_http_port(self) -> int:
        return self.consumer_health_port

    @property
    def relay_http_port(self) -> int:
        return self.relay_health_port

    @property
    def relay_poll_interval(self) -> float:
        return self.relay_poll_interval_seconds

    # UserSignedUp versions written to the outbox for every signup, each a copy of one event
    # (one event id) on its version's routing key, the newest first. 2 once every consumer reads
    # v2 (the default); 1,2 during a migration window (docs/contracts.md). Comma-separated or
    # JSON: ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS=1,2 or =[1, 2].
    publish_user_signed_up_versions: Annotated[list[int], NoDecode] = Field(default=[2])
    publishable_user_signed_up_versions: ClassVar[tuple[int, ...]] = (1, 2)

    @field_validator("publish_user_signed_up_versions", mode="before")
    @classmethod
    def _versions_list(cls, value: Any) -> Any:
        """``2``, ``1,2`` or ``[1, 2]`` from the environment; a list as it is."""
        if isinstance(value, int):
            return [value]
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("publish_user_signed_up_versions")
    @classmethod
    def _known_versions(cls, versions: list[int]) -> list[int]:
        if not versions:
            raise ValueError("name at least one UserSignedUp version to publish, e.g. [2]")
        unknown = sorted(set(versions) - set(cls.publishable_user_signed_up_versions))
        if unknown:
            raise ValueError(
                f"UserSignedUp version(s) {unknown} cannot be published; "
                f"known: {list(cls.publishable_user_signed_up_versions)}"
            )
        return sorted(set(versions), reverse=True)

    # The right to erasure (docs/erasure.md). The services that must confirm an erasure before
    # it is complete, accounts itself included. As JSON: ACCOUNTS_ERASURE_HOLDERS=["accounts",...]
    erasure_holders: list[str] = Field(
        default=["accounts", "notifications", "provisioning", "stats"]
    )
    # How often the consumer measures the oldest unconfirmed erasure (the metric the alert reads),
    # and how long an erasure may wait for every holder's confirmation before ErasureUnconfirmed.
    erasure_age_probe_interval_seconds: float = 15.0
    erasure_deadline_seconds: float = 3600.0
