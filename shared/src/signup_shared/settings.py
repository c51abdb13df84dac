"""Settings shared by every service, read from environment variables with local defaults."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"


def local_database_url(database: str) -> str:
    return f"{LOCAL_POSTGRES_URL}/{database}"


class ServiceSettings(BaseSettings):
    """Base settings. A service subclasses it with its own env prefix and database default.

    Every field can be set as ``<PREFIX>_<FIELD>``; ``AMQP_URL`` and ``LOG_FORMAT`` are also read
    unprefixed so one variable configures the whole stack.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    database_url: str = local_database_url("postgres")
    database_pool_size: int = 10
    amqp_url: str = Field(default=LOCAL_AMQP_URL, validation_alias="AMQP_URL")
    amqp_heartbeat: int = 20
    confirm_timeout: float = 10.0
    prefetch_count: int = 50
    retry_delays: list[int] = Field(default=[1_000, 10_000, 60_000])
    delivery_limit: int = 10
    inbox_retention_days: int = 7
    outbox_retention_hours: int = 24
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="auto", validation_alias="LOG_FORMAT")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
