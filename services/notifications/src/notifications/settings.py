from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from signup_shared.settings import (
    ServiceSettings,
    amqp_url_field,
    local_database_url,
    renamed_field,
)

PREFIX = "NOTIFICATIONS_"


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service_name: str = "notifications"
    database_url: str = local_database_url("notifications")
    amqp_url: str = amqp_url_field("notifications")
    consumer_health_port: int = renamed_field(PREFIX, "consumer_health_port", "http_port", 8001)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = renamed_field(
        PREFIX, "smtp_timeout_seconds", "smtp_timeout", 10.0
    )
    # Whole-session deadlines: connect, every command and the data, however slowly bytes come.
    smtp_deadline_seconds: float = 30.0
    mail_from: str = "Signup Platform <welcome@signup.local>"

    sms_base_url: str = "http://127.0.0.1:8025"
    sms_token: SecretStr = SecretStr("local-dev-token")
    sms_timeout_seconds: float = renamed_field(PREFIX, "sms_timeout_seconds", "sms_timeout", 5.0)
    sms_deadline_seconds: float = 15.0

    sweep_interval_seconds: float = renamed_field(
        PREFIX, "sweep_interval_seconds", "sweep_interval", 15.0
    )
    sweep_grace_seconds: float = renamed_field(PREFIX, "sweep_grace_seconds", "sweep_grace", 30.0)
    sweep_batch_size: int = 100
    inbox_prune_interval_seconds: float = renamed_field(
        PREFIX, "inbox_prune_interval_seconds", "inbox_prune_interval", 3600.0
    )
    delivery_concurrency: int = 4
    # How long a batch waits for its deliveries before answering the broker (the rest go on).
    delivery_wait_seconds: float = 2.0
    # The consumer process publishes its UserErased confirmations itself (docs/erasure.md),
    # woken at commit (LISTEN outbox); this is its safety poll.
    erasure_relay_interval_seconds: float = 30.0

    # The UserSignedUp version this service reads: its queue is bound to that version's routing
    # key and unbound from the other's at start (NOTIFICATIONS_USER_SIGNED_UP_VERSION=1 or 2;
    # switch by restarting, docs/contracts.md). The handler accepts both versions either way.
    user_signed_up_version: int = Field(default=2, ge=1)

    renamed: ClassVar[dict[str, str]] = {
        "http_port": "consumer_health_port",
        "smtp_timeout": "smtp_timeout_seconds",
        "sms_timeout": "sms_timeout_seconds",
        "sweep_interval": "sweep_interval_seconds",
        "sweep_grace": "sweep_grace_seconds",
        "inbox_prune_interval": "inbox_prune_interval_seconds",
    }

    # The old attribute names, read-only, for one release (callers move to the new names).
    @property
    def http_port(self) -> int:
        return self.consumer_health_port

    @property
    def smtp_timeout(self) -> float:
        return self.smtp_timeout_seconds

    @property
    def sms_timeout(self) -> float:
        return self.sms_timeout_seconds

    @property
    def sweep_interval(self) -> float:
        return self.sweep_interval_seconds

    @property
    def sweep_grace(self) -> float:
        return self.sweep_grace_seconds

    @property
    def inbox_prune_interval(self) -> float:
        return self.inbox_prune_interval_seconds
