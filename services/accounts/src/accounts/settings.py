from pydantic_settings import SettingsConfigDict

from signup_shared.settings import ServiceSettings, amqp_url_field, local_database_url


class AccountsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ACCOUNTS_", extra="ignore")

    service_name: str = "accounts"
    database_url: str = local_database_url("accounts")
    amqp_url: str = amqp_url_field("accounts")
    http_port: int = 8000
    consumer_http_port: int = 8010
    max_body_bytes: int = 16 * 1024
    relay_http_port: int = 8020
    relay_batch_size: int = 500
    relay_poll_interval: float = 1.0
