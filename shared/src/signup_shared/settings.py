"""Settings shared by every service, read from environment variables with local defaults."""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from signup_shared.messaging.history import parse_position

# Administrators of the local servers: the credentials setup (deploy/credentials) and the tests
# use them to create users, roles, vhosts and databases. No service connects with them.
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
LOCAL_AMQP_SERVER = "127.0.0.1:5672"
LOCAL_POSTGRES_SERVER = "127.0.0.1:5432"


def local_password(user: str) -> str:
    """The password ``user`` has on a developer machine (``make run``); set real ones by env."""
    return f"local-dev-{user}"


def local_database_url(database: str) -> str:
    """The service's own role (named like its database) on the local PostgreSQL."""
    return (
        f"postgresql+psycopg://{database}:{local_password(database)}"
        f"@{LOCAL_POSTGRES_SERVER}/{database}"
    )


def local_amqp_url(user: str) -> str:
    """The broker user ``user`` on the local RabbitMQ, vhost ``/``."""
    return f"amqp://{user}:{local_password(user)}@{LOCAL_AMQP_SERVER}//"


def amqp_url_field(service: str) -> Any:
    """``<SERVICE>_AMQP_URL``, else ``AMQP_URL``, else the service's own local broker user."""
    return Field(
        default=local_amqp_url(service),
        validation_alias=AliasChoices(f"{service.upper()}_AMQP_URL", "AMQP_URL"),
    )


def renamed_field(prefix: str, name: str, old_name: str, default: Any, **constraints: Any) -> Any:
    """A field renamed in this release: ``<PREFIX><NAME>``, else the old ``<PREFIX><OLD_NAME>``.

    The old environment variable stays an alias for one release; list the old attribute name in
    the class's ``renamed`` too, so that ``Settings(old_name=...)`` keeps working.
    """
    return Field(
        default=default,
        validation_alias=AliasChoices(f"{prefix}{name}".upper(), f"{prefix}{old_name}".upper()),
        **constraints,
    )


class ServiceSettings(BaseSettings):
    """Base settings. A service subclasses it with its own env prefix and database default.

    Every field can be set as ``<PREFIX>_<FIELD>``; ``AMQP_URL`` and ``LOG_FORMAT`` are also read
    unprefixed so one variable configures the whole stack. Each service connects as its own
    broker user and database role (``<PREFIX>_AMQP_URL``, ``<PREFIX>_DATABASE_URL``; the local
    defaults carry development passwords that only ``make run`` on a developer machine uses).

    Names follow one convention: a duration names its unit (``_seconds``, ``_ms``, ``_hours``,
    ``_days``); a port names what answers on it: ``web_port`` (the API of a web process),
    ``consumer_health_port`` and ``relay_health_port`` (health and metrics of a consumer or
    relay process). ``http_host`` is the address every one of them binds.
    """

    renamed: ClassVar[Mapping[str, str]] = {}
    """Old attribute name -> new one, for the fields renamed in this release."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    database_url: str = local_database_url("service")
    database_pool_size: int = 10
    amqp_url: str = amqp_url_field("service")
    amqp_heartbeat: int = 20
    confirm_timeout: float = 10.0
    prefetch_count: int = 50
    # A consumer handles up to this many already-delivered messages in one transaction (never
    # waiting for more); 1 turns batching off.
    consumer_batch_size: int = Field(default=100, ge=1)
    retry_delays: list[int] = Field(default=[1_000, 10_000, 60_000])
    delivery_limit: int = 10
    inbox_retention_days: int = 7
    outbox_retention_hours: int = 24
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="auto", validation_alias="LOG_FORMAT")
    http_host: str = "127.0.0.1"
    # Catch-up from the event history before consuming (``signup_shared.messaging.catch_up``):
    # ``first``, an offset of the stream or an ISO 8601 time; unset: no catch-up.
    catch_up_from: str | None = None
    catch_up_margin_seconds: float = Field(default=2.0, ge=0)
    catch_up_then_exit: bool = False  # ``<service> catch-up``: do not consume afterwards
    # Users' data keys, to open sealed signups (``UserSignedUp`` v3) read from the event history
    # (``signup_shared.keys``): accounts' internal API and an API key with the scope
    # ``keys:read`` (``accounts keys create --client <service> --scope keys:read``), given
    # itself or as a file holding it. Unset: a sealed event is retried, then dead-lettered.
    keys_url: str | None = None
    keys_api_key: SecretStr | None = None
    keys_api_key_file: str | None = None
    keys_timeout_seconds: float = Field(default=5.0, gt=0)
    keys_cache_seconds: float = Field(default=60.0, ge=0)

    @field_validator("catch_up_from")
    @classmethod
    def _catch_up_start(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_position(value)  # raises naming what is accepted
            return value.strip()
        return None

    @model_validator(mode="before")
    @classmethod
    def _accept_old_names(cls, data: Any) -> Any:
        """``Settings(old_name=...)`` sets the renamed field, over its environment variables."""
        if not isinstance(data, dict) or not cls.renamed:
            return data
        values = dict(data)
        for old, new in cls.renamed.items():
            if old in values:
                value = values.pop(old)
                alias = cls.model_fields[new].validation_alias
                for key in alias.choices if isinstance(alias, AliasChoices) else ():
                    values.pop(key, None)
                values[new] = value
        return values


class HistorySettings(BaseSettings):
    """Retention of the ``events.history`` stream (``EVENTS_HISTORY_*``), used where it is
    declared: the definitions (``deploy/rabbitmq``) and the credentials setup. Once it exists, a
    policy changes them (docs/operations.md, "Event history")."""

    model_config = SettingsConfigDict(env_prefix="EVENTS_HISTORY_", extra="ignore")

    max_age_days: int = Field(default=30, ge=1)
    max_length_bytes: int = Field(default=20_000_000_000, ge=1)
    max_segment_size_bytes: int = Field(default=100_000_000, ge=1)
    replicas: int = Field(default=3, ge=1)


def environment_help(settings_class: type[BaseSettings], names: Sequence[str]) -> str:
    """The environment variables of the settings ``names`` with their defaults, for ``--help``
    (URLs are named without their default: it may hold a password)."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    lines = ["environment (defaults in brackets):"]
    for name in names:
        field = settings_class.model_fields[name]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):  # a renamed setting: its current name comes first
            alias = alias.choices[0]
        variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
        default = "" if name.endswith("_url") else f" [{field.default}]"
        lines.append(f"  {variable}{default}")
    return "\n".join(lines)
