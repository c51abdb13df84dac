"""Users' data keys, from accounts' internal API: how a reader of the event history unseals.

``HttpKeyResolver.lookup(user_ids)`` answers, for each user, their data key, or None when the
key no longer exists (the user was erased: their sealed events read as redacted). It asks
``POST <keys_url>/keys/lookup`` (scope ``keys:read``) for the users it does not know yet, up to
``BATCH`` ids per request, and keeps a small cache: a found key for ``cache_seconds`` (an
erasure reaches this reader within that time at worst), a missing key for good (a deleted key
never comes back). Anything that stops it from answering (no keys service configured, a
refused connection, a timeout, a 5xx, a refused API key, an answer it cannot read) raises
``KeyLookupError``: a transient error. The consumer runtime then holds the event and tries
again with a backoff until the keys service answers (as through an outage of its own
database): never a dead letter, never taken as erased. Without a keys service configured
(``KeysUnconfiguredError``) waiting cannot help: the event takes the retry queues, then the
dead-letter queue with the setting to set in its reason.
"""

import base64
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from signup_shared.errors import TransientError

BATCH = 300
"""At most this many ids per request (accounts' ``MAX_LOOKUP``)."""
KEY_BYTES = 32


class KeyLookupError(TransientError):
    """The keys service could not answer (the message says why): retry later."""


class KeysUnconfiguredError(KeyLookupError):
    """No keys service is configured: not an outage (waiting cannot help), a setting to set."""


class KeyResolver(Protocol):
    def lookup(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        """Each user's data key, or None when it no longer exists (erased)."""
        ...

    def close(self) -> None: ...


class UnconfiguredKeyResolver:
    """What a service without ``<SERVICE>_KEYS_URL`` has: every lookup fails, transiently, with
    the setting to set (a sealed event waits in the retry queues meanwhile)."""

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def lookup(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        raise KeysUnconfiguredError(
            f"a sealed event (UserSignedUp v3) needs users' data keys, and no keys service is "
            f"configured: set {self.setting}_URL and {self.setting}_API_KEY (or "
            f"{self.setting}_API_KEY_FILE) to accounts' internal API and a keys:read API key"
        )

    def close(self) -> None:
        pass


class HttpKeyResolver:
    """``POST /keys/lookup`` on accounts, batched, with a small cache (thread-safe)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
        transport: httpx.BaseTransport | None = None,
        clock: "Clock" = time.monotonic,
    ) -> None:
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.clock = clock
        self._found: OrderedDict[uuid.UUID, tuple[bytes, float]] = OrderedDict()
        self._gone: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._lock = threading.Lock()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def lookup(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        wanted = list(dict.fromkeys(user_ids))
        answer: dict[uuid.UUID, bytes | None] = {}
        with self._lock:
            missing = [user for user in wanted if not self._cached(user, answer)]
        for start in range(0, len(missing), BATCH):
            chunk = missing[start : start + BATCH]
            found = self._ask(chunk)
            with self._lock:
                for user in chunk:
                    key = found.get(user)
                    answer[user] = key
                    self._remember(user, key)
        return answer

    def _cached(self, user: uuid.UUID, answer: dict[uuid.UUID, bytes | None]) -> bool:
        if user in self._gone:
            answer[user] = None
            return True
        entry = self._found.get(user)
        if entry is not None and self.clock() - entry[1] < self.cache_seconds:
            answer[user] = entry[0]
            return True
        return False

    def _remember(self, user: uuid.UUID, key: bytes | None) -> None:
        if key is None:
            self._found.pop(user, None)
            self._gone[user] = None
            _trim(self._gone, self.cache_size)
        else:
            self._found[user] = (key, self.clock())
            self._found.move_to_end(user)
            _trim(self._found, self.cache_size)

    def _ask(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        try:
            response = self._client.post(
                "/keys/lookup", json={"user_ids": [str(user) for user in user_ids]}
            )
        except httpx.HTTPError as exc:
            raise KeyLookupError(f"keys service unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise KeyLookupError(
                f"keys service answered {response.status_code}: {_detail(response)}"
            )
        try:
            keys = response.json()["keys"]
            if not isinstance(keys, Mapping):
                raise TypeError("keys is not an object")
            found = {uuid.UUID(str(user)): _key(str(text)) for user, text in keys.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyLookupError(f"keys service answer unreadable: {exc}") from exc
        return found

    def close(self) -> None:
        self._client.close()


def resolver(
    setting: str,
    url: str | None,
    api_key: str | None,
    api_key_file: str | None,
    *,
    timeout: float = 5.0,
    cache_seconds: float = 60.0,
) -> KeyResolver:
    """The resolver a service's settings describe (``setting``: the variables' prefix, e.g.
    ``NOTIFICATIONS_KEYS``). A key file that cannot be read fails the start, naming it."""
    if not url:
        return UnconfiguredKeyResolver(setting)
    if api_key is None and api_key_file:
        try:
            api_key = Path(api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{setting}_API_KEY_FILE={api_key_file}: {exc.strerror}") from exc
    if not api_key:
        raise ValueError(f"{setting}_URL is set: set {setting}_API_KEY or {setting}_API_KEY_FILE")
    return HttpKeyResolver(url, api_key, timeout=timeout, cache_seconds=cache_seconds)


class Clock(Protocol):
    def __call__(self) -> float: ...


def _key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(key) != KEY_BYTES:
        raise ValueError(f"a data key has {KEY_BYTES} bytes, not {len(key)}")
    return key


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or response.reason_phrase)[:200]


def _trim(cache: "OrderedDict[uuid.UUID, Any]", size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)
