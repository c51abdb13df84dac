from pathlib import Path

from pydantic_settings import SettingsConfigDict

from signup_shared.settings import ServiceSettings, amqp_url_field, local_database_url


class ProvisioningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROVISIONING_", extra="ignore")

    service_name: str = "provisioning"
    database_url: str = local_database_url("provisioning")
    amqp_url: str = amqp_url_field("provisioning")
    http_port: int = 8002
    spaces_root: Path = Path("var/spaces")
    relay_http_port: int = 8022
    relay_batch_size: int = 500
    relay_poll_interval: float = 1.0
    inbox_prune_interval_seconds: float = 3600.0
