from pydantic_settings import SettingsConfigDict

from signup_shared.settings import ServiceSettings, amqp_url_field, local_database_url


class StatsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATS_", extra="ignore")

    service_name: str = "stats"
    database_url: str = local_database_url("stats")
    amqp_url: str = amqp_url_field("stats")
    http_port: int = 8003
    consumer_http_port: int = 8013
    inbox_prune_interval_seconds: float = 3600.0
