from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signup_shared.settings import ServiceSettings, amqp_url_field, local_database_url

PREFIX = "AUDIT_"


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service_name: str = "audit"
    database_url: str = local_database_url("audit")
    amqp_url: str = amqp_url_field("audit")
    consumer_health_port: int = 8014
    inbox_prune_interval_seconds: float = 3600.0
    # The UserSignedUp version its queue is bound to (its key); the handler reads v1 and v2.
    user_signed_up_version: int = Field(default=2, ge=1)
