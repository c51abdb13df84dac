"""The internal user API: read a user (``users:read``), erase a user (``users:erase``).

An erased user is gone for readers: ``GET /users/{id}`` answers 410 with the erasure's status
(which services have confirmed, which not yet). ``DELETE /users/{id}`` answers 202 the first
time (the erasure is recorded, accounts' copy erased, the other services asked) and 200 with
the current status when asked again; an unknown user is 404.
"""

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Response, status
from sqlalchemy.orm import Session, sessionmaker

from accounts import actions, erasure
from accounts.api.auth import requires
from accounts.api.schemas import (
    AUTH_ERROR,
    ERROR,
    FORBIDDEN,
    UNAVAILABLE,
    ErasureResponse,
    GoneResponse,
    UserResponse,
)
from accounts.erasure import ErasureState
from accounts.keys import Caller, Scope
from signup_shared.db import transaction
from signup_shared.logging import current_correlation_id, new_correlation_id

GONE = {"model": GoneResponse, "description": "The user was erased (the erasure's status)"}


@transaction
def _read(
    session: Session, user_id: uuid.UUID, holders: Sequence[str]
) -> actions.UserProfile | ErasureState:
    state = erasure.erasure_state(session, user_id, holders)
    return state if state is not None else actions.get_user(session, user_id)


@transaction
def _erase(
    session: Session,
    user_id: uuid.UUID,
    caller: Caller,
    correlation_id: str,
    holders: Sequence[str],
) -> tuple[ErasureState, bool]:
    return erasure.request_erasure(
        session, user_id, caller.client, correlation_id=correlation_id, holders=holders
    )


def erasure_response(state: ErasureState) -> ErasureResponse:
    return ErasureResponse(
        user_id=state.user_id,
        status=state.status.value,
        requested_at=state.requested_at,
        completed_at=state.completed_at,
        confirmed=list(state.confirmed),
        waiting_for=list(state.waiting_for),
    )


def json_response(body: UserResponse | ErasureResponse | GoneResponse, code: int) -> Response:
    return Response(body.model_dump_json(), code, media_type="application/json")


def install(app: FastAPI, sessions: sessionmaker[Session], holders: Sequence[str]) -> None:
    reader = Annotated[Caller, Depends(requires(Scope.USERS_READ, sessions))]
    eraser = Annotated[Caller, Depends(requires(Scope.USERS_ERASE, sessions))]
    holders = tuple(holders)

    @app.get(
        "/users/{user_id}",
        response_model=UserResponse,
        responses={
            401: AUTH_ERROR,
            403: FORBIDDEN,
            404: ERROR,
            410: GONE,
            422: ERROR,
            503: UNAVAILABLE,
        },
    )
    def get_user(user_id: uuid.UUID, _caller: reader) -> Response:
        """The user and their subscription (scope `users:read`); 410 once erased."""
        with sessions() as db:
            found = _read(db, user_id, holders, persist=False)
        if isinstance(found, ErasureState):
            gone = GoneResponse(detail="user erased", erasure=erasure_response(found))
            return json_response(gone, status.HTTP_410_GONE)
        return json_response(
            UserResponse(
                user_id=found.user_id,
                email=found.email,
                full_name=found.full_name,
                phone=found.phone,
                plan=found.plan.value,
                subscription_id=found.subscription_id,
                status=found.status.value,
                created_at=found.created_at,
                locale=found.locale,
            ),
            status.HTTP_200_OK,
        )

    @app.delete(
        "/users/{user_id}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ErasureResponse,
        responses={
            200: {"model": ErasureResponse, "description": "Erased before: the status"},
            401: AUTH_ERROR,
            403: FORBIDDEN,
            404: ERROR,
            422: ERROR,
            503: UNAVAILABLE,
        },
    )
    def delete_user(user_id: uuid.UUID, caller: eraser) -> Response:
        """Erase the user's personal data everywhere (scope `users:erase`; GDPR art. 17).

        202: recorded, accounts' copy erased, the other services asked; 200: erased before,
        the current status. Poll `GET /users/{id}` (410 with the status) until `complete`.
        """
        correlation_id = current_correlation_id() or new_correlation_id()
        with sessions() as db:
            state, created = _erase(db, user_id, caller, correlation_id, holders)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return json_response(erasure_response(state), code)
