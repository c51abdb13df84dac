"""Connection settings: environment variables, defaults and URL helpers (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from signup_dlq.errors import UsageError

# The operator user ``signup-dlq`` (deploy/credentials creates it; its local development
# password is only for a developer machine): it may read the ``*.dlq`` queues and publish to the
# default exchange (replay), nothing else. It never defaults to ``guest``.
OPERATOR_USER = "signup-dlq"
LOCAL_OPERATOR_PASSWORD = "local-dev-signup-dlq"  # noqa: S105 (local development default)
DEFAULT_AMQP_URL = f"amqp://{OPERATOR_USER}:{LOCAL_OPERATOR_PASSWORD}@127.0.0.1:5672/%2F"
DEFAULT_MANAGEMENT_URL = f"http://{OPERATOR_USER}:{LOCAL_OPERATOR_PASSWORD}@127.0.0.1:15672"
# ``drop-erased --all --every`` as a process of the platform (the dlq-janitor role of
# deploy/roles.toml) connects as a broker user of its own, with the operator's grants
# (deploy/rabbitmq/grants.py): its credentials live in its own secret only.
JANITOR_USER = "signup-dlq-janitor"
OPERATOR_AMQP_URL_ENV = "SIGNUP_DLQ_AMQP_URL"
OPERATOR_MANAGEMENT_URL_ENV = "SIGNUP_DLQ_MANAGEMENT_URL"
AMQP_URL_ENV = "AMQP_URL"
MANAGEMENT_URL_ENV = "RABBITMQ_MANAGEMENT_URL"
# ``drop-erased`` asks accounts' internal API (``GET /users/{id}``, scope ``users:read``) which
# users were erased. The API key comes from the environment only: an argument shows in ``ps``.
DEFAULT_ACCOUNTS_URL: Final = "http://127.0.0.1:8000"
ACCOUNTS_URL_ENV: Final = "SIGNUP_DLQ_ACCOUNTS_URL"
ACCOUNTS_API_KEY_ENV: Final = "SIGNUP_DLQ_ACCOUNTS_API_KEY"
ACCOUNTS_API_KEY_FILE_ENV: Final = "SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE"
NODE_SEPARATOR: Final = ";"
"""Between the nodes of a cluster in one AMQP URL setting, as the services read it."""
# ``scheme://user:password@`` inside any text (an exception message, a hand-built line).
_CREDENTIALS_IN_TEXT: Final = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:;]*:)[^\s;/]*@"
)


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


def resolve_accounts_url(cli_value: str | None, env: Mapping[str, str]) -> str:
    """``--accounts-url``, else ``$SIGNUP_DLQ_ACCOUNTS_URL``, else the local accounts web."""
    return (cli_value or env.get(ACCOUNTS_URL_ENV) or DEFAULT_ACCOUNTS_URL).rstrip("/")


def amqp_urls(setting: str) -> list[str]:
    """The node URLs of an AMQP URL setting: one URL, or several separated by ``;``."""
    urls = [url.strip() for url in setting.split(NODE_SEPARATOR) if url.strip()]
    if not urls:
        raise UsageError("the AMQP URL is empty")
    return urls


def vhost_from_amqp_url(setting: str) -> str:
    """The vhost an AMQP URL (or each node URL of a cluster) points at.

    ``/%2F`` and an empty path both mean ``/``. Node URLs naming different vhosts are refused:
    the tool works on one vhost.
    """
    vhosts = {_vhost(url) for url in amqp_urls(setting)}
    if len(vhosts) > 1:
        raise UsageError(
            f"the node URLs of {redact_url(setting)} name different vhosts "
            f"({', '.join(sorted(map(repr, vhosts)))}): give them all the same vhost"
        )
    return vhosts.pop()


def _vhost(url: str) -> str:
    path = urlsplit(url).path
    if not path or path == "/":
        return "/"
    return unquote(path[1:])


def redact_url(url: str) -> str:
    """The URL (or each ``;``-separated node URL) with its password replaced by ``***``."""
    return NODE_SEPARATOR.join(_redact_one(part) for part in url.split(NODE_SEPARATOR))


def mask_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced."""
    return _CREDENTIALS_IN_TEXT.sub(r"\g<head>***@", text)


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<invalid url>"
    if password is None:
        return mask_credentials(url)
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
