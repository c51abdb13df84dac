"""Thin client for the RabbitMQ management HTTP API (stdlib urllib only)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from signup_dlq.config import redact_url
from signup_dlq.deadletter import is_dlq_name
from signup_dlq.errors import ManagementApiError

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
QUEUE_COLUMNS: Final = "name,type,durable,messages,messages_ready,messages_unacknowledged,consumers"
ENABLE_HINT: Final = "is the management plugin on? (rabbitmq-plugins enable rabbitmq_management)"


@dataclass(frozen=True)
class QueueInfo:
    """One queue as the management API reports it."""

    name: str
    messages: int
    messages_ready: int
    messages_unacknowledged: int
    consumers: int
    queue_type: str
    durable: bool


def split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:pw@host:port/x`` -> (``http://host:port/x``, basic-auth header value)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ManagementApiError(
            f"management URL must be http:// or https://, got {redact_url(url)}"
        )
    if not parts.hostname:
        raise ManagementApiError(f"management URL has no host: {redact_url(url)}")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    bare = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if parts.username is None:
        return bare, None
    user = unquote(parts.username)
    password = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return bare, f"Basic {token}"


def queue_info_from_json(item: dict[str, Any]) -> QueueInfo:
    """One element of ``GET /api/queues/<vhost>``; missing stats (a new queue) count as 0."""

    def number(key: str) -> int:
        value = item.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return QueueInfo(
        name=str(item.get("name", "")),
        messages=number("messages"),
        messages_ready=number("messages_ready"),
        messages_unacknowledged=number("messages_unacknowledged"),
        consumers=number("consumers"),
        queue_type=str(item.get("type") or "classic"),
        durable=bool(item.get("durable", False)),
    )


class ManagementClient:
    """``GET`` requests against ``<management_url>/api/...`` with basic auth."""

    def __init__(self, management_url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.display_url = redact_url(management_url)
        self.base_url, self._authorization = split_credentials(management_url)
        self.timeout = timeout

    def get_json(self, path: str, *, not_found: str | None = None) -> Any:
        url = f"{self.base_url}{path}"
        request = Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
        if self._authorization:
            request.add_header("Authorization", self._authorization)
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                payload = response.read()
        except HTTPError as exc:
            if exc.code == 401:
                raise ManagementApiError(
                    f"management API at {self.display_url} refused the credentials (401)"
                ) from exc
            if exc.code == 404:
                raise ManagementApiError(
                    not_found or f"management API at {self.display_url}: {path} not found (404)"
                ) from exc
            raise ManagementApiError(
                f"management API at {self.display_url} answered {exc.code} {exc.reason} for {path}"
            ) from exc
        except (URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, URLError) else exc
            raise ManagementApiError(
                f"cannot reach the management API at {self.display_url} ({reason}): {ENABLE_HINT}"
            ) from exc
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise ManagementApiError(
                f"management API at {self.display_url} did not answer JSON for {path}"
            ) from exc

    def list_queues(self, vhost: str) -> list[QueueInfo]:
        payload = self.get_json(
            f"/api/queues/{quote(vhost, safe='')}?columns={QUEUE_COLUMNS}",
            not_found=f"vhost {vhost!r} does not exist (management API at {self.display_url})",
        )
        if not isinstance(payload, list):
            raise ManagementApiError(
                f"management API at {self.display_url}: unexpected answer for the queue list"
            )
        return [queue_info_from_json(item) for item in payload if isinstance(item, dict)]

    def list_dlqs(self, vhost: str) -> list[QueueInfo]:
        """The queues of ``vhost`` whose name ends in ``.dlq``, sorted by name."""
        return sorted(
            (queue for queue in self.list_queues(vhost) if is_dlq_name(queue.name)),
            key=lambda queue: queue.name,
        )
