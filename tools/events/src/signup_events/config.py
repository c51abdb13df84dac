"""Which broker user each command connects as (no I/O).

``tail`` and ``stats`` read the history as ``events-reader`` (may read ``events.history``,
nothing else); ``replay`` connects as the service it replays into, with the URL that service
reads (``<SERVICE>_AMQP_URL``, else ``AMQP_URL``), so the broker lets it reach that service's
queues only.
"""

import re
from collections.abc import Mapping
from typing import Final

from signup_events.errors import UsageError
from signup_shared.settings import local_amqp_url

READER_USER: Final = "events-reader"
READER_URL_ENV: Final = "EVENTS_READER_AMQP_URL"
SERVICE_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def reader_url(cli_value: str | None, env: Mapping[str, str]) -> str:
    """``--amqp-url``, else ``$EVENTS_READER_AMQP_URL``, else the local ``events-reader``."""
    return cli_value or env.get(READER_URL_ENV) or local_amqp_url(READER_USER)


def service_url(service: str, cli_value: str | None, env: Mapping[str, str]) -> str:
    """``--amqp-url``, else ``$<SERVICE>_AMQP_URL``, else ``$AMQP_URL``, else the service's
    local user (as the service itself resolves it)."""
    return (
        cli_value
        or env.get(f"{service.upper()}_AMQP_URL")
        or env.get("AMQP_URL")
        or local_amqp_url(service)
    )


def service_name(text: str) -> str:
    """A service name as queues are named after it (``audit``, ``notifications``)."""
    if not SERVICE_NAME.match(text):
        raise UsageError(
            f"--service {text!r}: expected a service name such as notifications or audit "
            f"(lowercase letters, digits, '-' or '_')"
        )
    return text
