"""Who may call the internal API: per-client API keys with scopes, stored hashed.

A key reads ``sk_<client>_<key id>_<secret>``: the key id finds the row, the client must be the
row's, and the SHA-256 of the secret must equal the stored one (compared in constant time). The
secret is 32 random bytes, so a fast hash is enough (no password to stretch); the database never
holds a usable key. Rotation: a client holds up to two valid keys; create the new one, deploy it,
revoke the old (``accounts keys create | list | revoke``).

Nothing here builds SQL or commits (``accounts.erasure_models`` persists; the caller commits).
"""

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import structlog
from sqlalchemy.orm import Session

from accounts import erasure_models as store

PREFIX = "sk"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
MAX_VALID_KEYS_PER_CLIENT = 2
CLIENT = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
TOKEN = re.compile(r"^sk_([a-z][a-z0-9-]{1,63})_([0-9a-f]{16})_([0-9a-f]{64})$")

log = structlog.get_logger(__name__)


class Scope(enum.StrEnum):
    USERS_READ = "users:read"
    USERS_ERASE = "users:erase"
    KEYS_READ = "keys:read"


class Refusal(enum.StrEnum):
    """Why a credential was refused (the 401's detail; the token itself is never logged)."""

    MISSING = "missing credentials: send Authorization: Bearer <API key>"
    MALFORMED = "malformed credentials: expected an API key sk_<client>_<id>_<secret>"
    INVALID = "invalid credentials"
    EXPIRED = "credentials expired"
    REVOKED = "credentials revoked"


class NotAuthenticatedError(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


class ForbiddenError(Exception):
    def __init__(self, client: str, scope: Scope) -> None:
        super().__init__(f"client {client} lacks the scope {scope.value}")
        self.client, self.scope = client, scope


class KeyRefusedError(Exception):
    """A key cannot be created as asked (the message says why)."""


@dataclass(frozen=True)
class Caller:
    client: str
    key_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    client: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    token: str  # shown once, never stored


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    client: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(
    session: Session, authorization: str | None, needs: Scope, now: datetime | None = None
) -> Caller:
    """The caller behind a bearer token, if the key is valid and carries ``needs``.

    Raises ``NotAuthenticatedError`` (401: missing, malformed, unknown, wrong secret, another
    client's id, expired, revoked) or ``ForbiddenError`` (403: a valid key without the scope).
    """
    now = now or datetime.now(UTC)
    if not authorization:
        raise NotAuthenticatedError(Refusal.MISSING)
    found = TOKEN.match(authorization.strip())
    if found is None:
        raise NotAuthenticatedError(Refusal.MALFORMED)
    client, key_id, secret = found.groups()
    key = store.key_by_id(session, key_id)
    if key is None or key.client != client:
        _refuse(Refusal.INVALID, key_id, client)
    if not hmac.compare_digest(key.secret_sha256, digest(secret)):
        _refuse(Refusal.INVALID, key_id, client)
    if key.revoked_at is not None and key.revoked_at <= now:
        _refuse(Refusal.REVOKED, key_id, client)
    if key.expires_at is not None and key.expires_at <= now:
        _refuse(Refusal.EXPIRED, key_id, client)
    if needs.value not in key.scopes:
        log.info("auth.forbidden", key_id=key_id, client=client, scope=needs.value)
        raise ForbiddenError(client, needs)
    return Caller(client=client, key_id=key_id, scopes=frozenset(key.scopes))


def _refuse(refusal: Refusal, key_id: str, client: str) -> NoReturn:
    log.info("auth.refused", reason=refusal.name.lower(), key_id=key_id, client=client)
    raise NotAuthenticatedError(refusal)


def create_key(
    session: Session,
    client: str,
    scopes: list[str],
    valid_days: int | None,
    now: datetime | None = None,
) -> IssuedKey:
    """Issue a key for ``client``; refuses a third valid key (revoke one first: rotation)."""
    now = now or datetime.now(UTC)
    if not CLIENT.match(client):
        raise KeyRefusedError(f"client {client!r}: lowercase letters, digits and '-', 2-64")
    unknown = sorted(set(scopes) - {scope.value for scope in Scope})
    if not scopes or unknown:
        known = ", ".join(scope.value for scope in Scope)
        raise KeyRefusedError(f"scopes {unknown or '(none)'} refused; known: {known}")
    if valid_days is not None and valid_days < 1:
        raise KeyRefusedError("a key is valid for at least one day")
    valid = [k for k in list_keys(session) if k.client == client and _valid(k, now)]
    if len(valid) >= MAX_VALID_KEYS_PER_CLIENT:
        raise KeyRefusedError(
            f"client {client} has {len(valid)} valid keys ({', '.join(k.key_id for k in valid)}):"
            " revoke the old one before creating another"
        )
    key_id, secret = secrets.token_hex(KEY_ID_BYTES), secrets.token_hex(SECRET_BYTES)
    expires_at = now + timedelta(days=valid_days) if valid_days is not None else None
    store.add_key(
        session,
        store.ApiKey(
            id=key_id,
            client=client,
            secret_sha256=digest(secret),
            scopes=sorted(set(scopes)),
            created_at=now,
            expires_at=expires_at,
        ),
    )
    log.info("auth.key_created", key_id=key_id, client=client, scopes=sorted(set(scopes)))
    token = f"{PREFIX}_{client}_{key_id}_{secret}"
    return IssuedKey(key_id, client, tuple(sorted(set(scopes))), expires_at, token)


def _valid(key: KeyInfo, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def list_keys(session: Session) -> list[KeyInfo]:
    return [
        KeyInfo(k.id, k.client, tuple(k.scopes), k.created_at, k.expires_at, k.revoked_at)
        for k in store.keys(session)
    ]


def revoke_key(session: Session, key_id: str, now: datetime | None = None) -> bool:
    """Revoke a key at once; False if it was revoked already. Unknown: ``KeyRefusedError``."""
    if store.key_by_id(session, key_id) is None:
        raise KeyRefusedError(f"no key {key_id}")
    revoked = store.revoke_key(session, key_id, now or datetime.now(UTC))
    log.info("auth.key_revoked", key_id=key_id, changed=revoked)
    return revoked
