"""The key lookup adapter against a fake transport: batches, cache, and clear transient errors."""

import base64
import json
import uuid
from pathlib import Path

import httpx
import pytest

from signup_shared.keys import (
    BATCH,
    HttpKeyResolver,
    KeyLookupError,
    KeysUnconfiguredError,
    UnconfiguredKeyResolver,
    resolver,
)

KEY = bytes(range(32))


def encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


class Accounts:
    """Answers POST /keys/lookup from a dictionary; records the requests."""

    def __init__(self, keys: dict[uuid.UUID, bytes], status: int = 200) -> None:
        self.keys, self.status, self.requests = keys, status, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"detail": "credentials revoked"})
        asked = json.loads(request.content)["user_ids"]
        found = {u: encoded(self.keys[uuid.UUID(u)]) for u in asked if uuid.UUID(u) in self.keys}
        return httpx.Response(200, json={"keys": found})


def client(accounts: Accounts, now: list[float] | None = None) -> HttpKeyResolver:
    clock = now or [0.0]
    return HttpKeyResolver(
        "http://accounts:8000/",
        "sk_audit_0123456789abcdef_" + "0" * 64,
        transport=httpx.MockTransport(accounts),
        cache_seconds=60.0,
        clock=lambda: clock[0],
    )


def test_found_keys_and_absent_users() -> None:
    kept, erased = uuid.uuid4(), uuid.uuid4()
    accounts = Accounts({kept: KEY})
    assert client(accounts).lookup([kept, erased, kept]) == {kept: KEY, erased: None}
    [request] = accounts.requests
    assert request.url == "http://accounts:8000/keys/lookup"
    assert request.headers["Authorization"].startswith("Bearer sk_audit_")
    assert json.loads(request.content) == {"user_ids": [str(kept), str(erased)]}


def test_a_found_key_is_cached_for_a_while_a_missing_one_for_good() -> None:
    kept, erased = uuid.uuid4(), uuid.uuid4()
    accounts, now = Accounts({kept: KEY}), [0.0]
    keys = client(accounts, now)
    keys.lookup([kept, erased])
    keys.lookup([kept, erased])
    assert len(accounts.requests) == 1
    now[0] = 61.0  # the found key expires from the cache; an erased user stays erased
    accounts.keys.clear()
    assert keys.lookup([kept, erased]) == {kept: None, erased: None}
    assert json.loads(accounts.requests[-1].content) == {"user_ids": [str(kept)]}


def test_many_users_are_asked_in_batches() -> None:
    users = [uuid.uuid4() for _ in range(BATCH + 5)]
    accounts = Accounts({})
    client(accounts).lookup(users)
    assert [len(json.loads(r.content)["user_ids"]) for r in accounts.requests] == [BATCH, 5]


@pytest.mark.parametrize(("status", "said"), [(503, "503"), (401, "credentials revoked")])
def test_a_refusal_or_a_server_error_is_a_transient_error_saying_so(status: int, said: str) -> None:
    with pytest.raises(KeyLookupError, match=said):
        client(Accounts({}, status=status)).lookup([uuid.uuid4()])


def test_an_unreachable_service_is_a_transient_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    keys = HttpKeyResolver("http://x", "k", transport=httpx.MockTransport(refuse))
    with pytest.raises(KeyLookupError, match="unreachable"):
        keys.lookup([uuid.uuid4()])


def test_an_unreadable_answer_is_a_transient_error() -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": {"not-a-uuid": "AAAA"}})

    keys = HttpKeyResolver("http://x", "k", transport=httpx.MockTransport(garbage))
    with pytest.raises(KeyLookupError, match="unreadable"):
        keys.lookup([uuid.uuid4()])


def test_settings_pick_the_resolver_and_name_what_is_missing(tmp_path: Path) -> None:
    unset = resolver("AUDIT_KEYS", None, None, None)
    assert isinstance(unset, UnconfiguredKeyResolver)
    with pytest.raises(KeysUnconfiguredError, match="AUDIT_KEYS_URL"):
        unset.lookup([uuid.uuid4()])
    with pytest.raises(ValueError, match="AUDIT_KEYS_API_KEY"):
        resolver("AUDIT_KEYS", "http://accounts", None, None)
    with pytest.raises(ValueError, match="AUDIT_KEYS_API_KEY_FILE"):
        resolver("AUDIT_KEYS", "http://accounts", None, str(tmp_path / "absent"))
    (tmp_path / "key").write_text("sk_audit_x\n")
    found = resolver("AUDIT_KEYS", "http://accounts", None, str(tmp_path / "key"))
    assert isinstance(found, HttpKeyResolver)
    found.close()
