"""Thin client for accounts' internal API: was a user erased? (stdlib urllib only).

``GET /users/{id}`` with ``Authorization: Bearer <key>`` (scope ``users:read``): 410 Gone for
an erased user, 200 for a user who is not, 404 for an id accounts never knew. Anything else
(a refused key, a 5xx, no answer, an answer that is not accounts') raises
:class:`AccountsApiError`: the caller stops rather than guess. The key is never printed; the
200 body (the user's personal data) is read and thrown away.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from signup_dlq.config import (
    ACCOUNTS_API_KEY_ENV,
    ACCOUNTS_API_KEY_FILE_ENV,
    mask_credentials,
    redact_url,
)
from signup_dlq.erased import UserStatus
from signup_dlq.errors import AccountsApiError, UsageError

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
USER_NOT_FOUND: Final = "user not found"
SCOPE: Final = "users:read"
KEY_HINT: Final = (
    f"an API key with the scope {SCOPE} (accounts keys create --client signup-dlq --scope {SCOPE})"
)

Opener = Callable[..., Any]


def api_key_from_environment(env: Mapping[str, str]) -> str:
    """``$SIGNUP_DLQ_ACCOUNTS_API_KEY``, else the content of ``$SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE``.

    Never a command-line option: arguments show in ``ps``. Missing or unreadable: a usage
    error (exit 2) before the broker is touched.
    """
    key = env.get(ACCOUNTS_API_KEY_ENV, "").strip()
    path = env.get(ACCOUNTS_API_KEY_FILE_ENV, "").strip()
    if not key and path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"{ACCOUNTS_API_KEY_FILE_ENV}={path}: {exc.strerror or type(exc).__name__}"
            ) from exc
    if not key:
        raise UsageError(f"set {ACCOUNTS_API_KEY_ENV} or {ACCOUNTS_API_KEY_FILE_ENV} to {KEY_HINT}")
    return key


def _detail(payload: bytes) -> tuple[Any, str | None]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None, None
    detail = body.get("detail") if isinstance(body, dict) else None
    return body, detail if isinstance(detail, str) else None


class AccountsClient:
    """Implements :class:`~signup_dlq.erased.ErasureLookup` over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        opener: Opener = urlopen,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UsageError(
                f"the accounts URL must be http:// or https:// with a host, got "
                f"{redact_url(base_url)}"
            )
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        self._authorization = f"Bearer {api_key}"
        self.timeout = timeout
        self._open = opener

    def status(self, user_id: uuid.UUID) -> UserStatus:
        url = f"{self.base_url}/users/{user_id}"
        request = Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
        request.add_header("Authorization", self._authorization)
        try:
            with self._open(request, timeout=self.timeout) as response:
                response.read()  # the user's personal data: not kept, never shown
            return UserStatus.PRESENT
        except HTTPError as exc:
            return self._status_from_error(exc, user_id)
        except (URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, URLError) else exc
            raise AccountsApiError(
                f"cannot reach accounts at {self.display_url} ({mask_credentials(str(reason))})"
            ) from exc

    def _status_from_error(self, exc: HTTPError, user_id: uuid.UUID) -> UserStatus:
        try:
            payload = exc.read()
        except OSError:
            payload = b""
        body, detail = _detail(payload)
        where = f"accounts at {self.display_url}"
        if exc.code == 410 and isinstance(body, dict) and isinstance(body.get("erasure"), dict):
            return UserStatus.ERASED
        if exc.code == 404 and detail == USER_NOT_FOUND:
            return UserStatus.UNKNOWN
        if exc.code in {401, 403}:
            raise AccountsApiError(
                f"{where} refused the API key ({exc.code}: {detail or 'no detail'}); "
                f"it needs {KEY_HINT}"
            ) from exc
        raise AccountsApiError(
            f"{where} answered {exc.code} {exc.reason} for GET /users/{user_id}"
            + (f" ({detail})" if detail and exc.code < 500 else "")
            + ("" if exc.code >= 500 else ": is it accounts' internal API?")
        ) from exc
