"""Connection settings: environment variables, defaults and URL helpers (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

# The operator user ``signup-dlq`` (deploy/credentials creates it; its local development
# password is only for a developer machine): it may read the ``*.dlq`` queues and publish to the
# default exchange (replay), nothing else. It never defaults to ``guest``.
OPERATOR_USER = "signup-dlq"
LOCAL_OPERATOR_PASSWORD = "local-dev-signup-dlq"  # noqa: S105 (local development default)
DEFAULT_AMQP_URL = f"amqp://{OPERATOR_USER}:{LOCAL_OPERATOR_PASSWORD}@127.0.0.1:5672/%2F"
DEFAULT_MANAGEMENT_URL = f"http://{OPERATOR_USER}:{LOCAL_OPERATOR_PASSWORD}@127.0.0.1:15672"
OPERATOR_AMQP_URL_ENV = "SIGNUP_DLQ_AMQP_URL"
OPERATOR_MANAGEMENT_URL_ENV = "SIGNUP_DLQ_MANAGEMENT_URL"
AMQP_URL_ENV = "AMQP_URL"
MANAGEMENT_URL_ENV = "RABBITMQ_MANAGEMENT_URL"


def resolve_amqp_url(cli_value: str | None, env: Mapping[str, str]) -> str:
    """``--amqp-url``, else ``$SIGNUP_DLQ_AMQP_URL``, else ``$AMQP_URL``, else the default."""
    return cli_value or env.get(OPERATOR_AMQP_URL_ENV) or env.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL


def resolve_management_url(cli_value: str | None, env: Mapping[str, str]) -> str:
    """``--management-url``, else ``$SIGNUP_DLQ_MANAGEMENT_URL``, else
    ``$RABBITMQ_MANAGEMENT_URL``, else the default."""
    return (
        cli_value
        or env.get(OPERATOR_MANAGEMENT_URL_ENV)
        or env.get(MANAGEMENT_URL_ENV)
        or DEFAULT_MANAGEMENT_URL
    )


def vhost_from_amqp_url(url: str) -> str:
    """The vhost an AMQP URL points at (``/%2F`` and an empty path both mean ``/``)."""
    path = urlsplit(url).path
    if not path or path == "/":
        return "/"
    return unquote(path[1:])


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print in error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<invalid url>"
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
