from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from signup_shared.settings import ServiceSettings, amqp_url_field, local_database_url


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    database_url: str = local_database_url("notifications")
    amqp_url: str = amqp_url_field("notifications")
    http_port: int = 8001

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 10.0
    mail_from: str = "Signup Platform <welcome@signup.local>"

    sms_base_url: str = "http://127.0.0.1:8025"
    sms_token: SecretStr = SecretStr("local-dev-token")
    sms_timeout: float = 5.0

    sweep_interval: float = 15.0
    sweep_grace: float = 30.0
    sweep_batch_size: int = 100
    inbox_prune_interval: float = 3600.0
    delivery_concurrency: int = 4
