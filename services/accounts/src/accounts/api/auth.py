"""The internal API's authentication: a bearer API key per client, with scopes.

``requires(scope, sessions)`` is a FastAPI dependency: it reads ``Authorization: Bearer
<key>``, checks the key (``accounts.keys.authenticate``, against the hashes in accounts'
database) and returns the ``Caller``, or answers 401 (missing, malformed, unknown, expired,
revoked: ``WWW-Authenticate: Bearer error="invalid_token"``) or 403 (a valid key without the
scope: ``error="insufficient_scope"``). The key itself never reaches a log line.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from accounts import keys
from accounts.keys import Caller, Scope
from signup_shared.db import transaction

SCHEME = "ApiKey"
bearer = HTTPBearer(
    scheme_name=SCHEME,
    bearerFormat="sk_<client>_<key id>_<secret>",
    description=(
        "A per-client API key (`accounts keys create --client NAME --scope users:read`), sent "
        "as `Authorization: Bearer <key>`. Scopes: `users:read` (GET /users/{id}), "
        "`users:erase` (DELETE /users/{id}), `keys:read` (POST /keys/lookup: users' data "
        "keys, for readers of the event history)."
    ),
    auto_error=False,
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@transaction
def _authenticate(session: Session, token: str | None, scope: Scope) -> Caller:
    return keys.authenticate(session, token, scope)


def requires(scope: Scope, sessions: sessionmaker[Session]) -> Callable[..., Caller]:
    """A dependency answering 401/403 unless the request carries a key with ``scope``."""

    def authenticated(credentials: Credentials) -> Caller:
        token = credentials.credentials if credentials is not None else None
        with sessions() as session:
            return _authenticate(session, token, scope, persist=False)

    return authenticated
