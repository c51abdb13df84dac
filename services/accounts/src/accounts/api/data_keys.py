"""The data keys of users, for readers of the event history (scope ``keys:read``).

A signup is kept in the history as ``UserSignedUp`` v3, its personal fields sealed with the
user's data key (``signup_contracts.sealed``). ``POST /keys/lookup`` answers the keys of up to
``MAX_LOOKUP`` users that still exist; an erased user's key is deleted, so they are absent from
the answer and the reader takes their events as redacted. The answer is never cached
(``Cache-Control: no-store``) and no key reaches a log line.
"""

import base64
import uuid
from typing import Annotated

from fastapi import Depends, FastAPI, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from accounts import erasure
from accounts.api.auth import requires
from accounts.api.schemas import AUTH_ERROR, ERROR, FORBIDDEN, UNAVAILABLE
from accounts.keys import Caller, Scope
from signup_shared.db import transaction

MAX_LOOKUP = 300
"""300 ids fit the API's 16 KiB request body limit (about 40 bytes each in JSON)."""


class KeyLookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_LOOKUP, description="The users whose data keys are wanted"
    )


class KeyLookupResponse(BaseModel):
    keys: dict[uuid.UUID, str] = Field(
        description="user id -> the user's 32-byte AES-256 data key (URL-safe base64 without "
        "padding), for the users whose key still exists; an erased user is absent"
    )


@transaction
def _lookup(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    return erasure.data_keys(session, user_ids)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def install(app: FastAPI, sessions: sessionmaker[Session]) -> None:
    reader = Annotated[Caller, Depends(requires(Scope.KEYS_READ, sessions))]

    @app.post(
        "/keys/lookup",
        response_model=KeyLookupResponse,
        responses={
            400: ERROR,
            401: AUTH_ERROR,
            403: FORBIDDEN,
            413: ERROR,
            422: ERROR,
            503: UNAVAILABLE,
        },
    )
    def lookup_keys(body: KeyLookupRequest, _caller: reader) -> Response:
        """The data keys of up to 300 users (scope `keys:read`): how a reader of the event
        history unseals `UserSignedUp` v3. An erased user's key is gone: absent here."""
        with sessions() as db:
            found = _lookup(db, body.user_ids, persist=False)
        answer = KeyLookupResponse(keys={user: encode_key(key) for user, key in found.items()})
        return Response(
            answer.model_dump_json(),
            status.HTTP_200_OK,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
