"""Business rules of provisioning: giving every new user a storage space sized by their plan."""

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provisioning.adapters.storage import SpaceRequest, SpaceStorage
from provisioning.models import SPACE_USER_UNIQUE, Plan, Space, SpaceStatus
from signup_shared.errors import TransientError
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.outbox import outbox_values

PRODUCER = "provisioning"
GIB = 1024**3
QUOTA_BYTES: dict[Plan, int] = {
    Plan.FREE: 1 * GIB,
    Plan.PRO: 50 * GIB,
    Plan.TEAM: 500 * GIB,
}
# Space ids derive from the user id so that a retry after a crash between creating the
# directory and committing records the same id the directory's manifest already holds.
SPACE_ID_NAMESPACE = uuid.UUID("3f0c6a52-7d1e-4f59-9a53-2b8e1c4d7a10")

log = structlog.get_logger(__name__)


class SpaceBeingProvisionedError(TransientError):
    """A concurrent handler is provisioning the same user's space; a retry will find it."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"space of user {user_id} is being provisioned concurrently")


def space_id_for(user_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(SPACE_ID_NAMESPACE, str(user_id))


# A user's space, if any (built once: only its parameter changes from call to call).
EXISTING_SPACE = select(Space).where(Space.user_id == bindparam("user_id"))
# The space and its SpaceProvisioned outbox row in one statement (one round trip, compiled once):
# the outbox row is selected from the inserted space, so both are written or neither is, in the
# caller's transaction. No ON CONFLICT: a concurrent insert for the same user still fails on
# uq_spaces_user_id, and the handler retries and then finds that space.
INSERT_SPACE_AND_EVENT = text(
    """
    WITH space AS (
        INSERT INTO spaces
            (id, user_id, plan, quota_bytes, status, storage_path, created_at, updated_at)
        VALUES (:space_id, :user_id, CAST(:plan AS plan), :quota_bytes,
                CAST(:status AS space_status), :storage_path, :now, :now)
        RETURNING id
    )
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    SELECT CAST(:event_id AS uuid), CAST(:routing_key AS varchar), CAST(:event_type AS varchar),
           CAST(:version AS integer), CAST(:producer AS varchar),
           CAST(:correlation_id AS varchar), CAST(:payload AS text), CAST(:traceparent AS varchar)
    FROM space
    """
)


def provision_space(
    session: Session,
    storage: SpaceStorage,
    event: Envelope[UserSignedUp],
    now: datetime | None = None,
) -> Space:
    """Create the new user's space and record ``SpaceProvisioned`` in the outbox (once per user).

    The caller owns the transaction. A user who already has a space gets it back and no event.
    Raises ``SpaceBeingProvisionedError`` when a concurrent handler inserted the space first.
    """
    signup = event.data
    existing = session.scalar(EXISTING_SPACE, {"user_id": signup.user_id})
    if existing is not None:
        log.debug(
            "space.already_provisioned", user_id=str(signup.user_id), space_id=str(existing.id)
        )
        return existing
    now = now or datetime.now(UTC)
    plan = Plan(signup.plan)
    request = SpaceRequest(
        user_id=signup.user_id,
        space_id=space_id_for(signup.user_id),
        plan=plan.value,
        quota_bytes=QUOTA_BYTES[plan],
        created_at=now,
    )
    path = storage.create_space(request)
    # Not added to the session: the statement below writes the row; this is the caller's copy.
    space = Space(
        id=request.space_id,
        user_id=request.user_id,
        plan=plan,
        quota_bytes=request.quota_bytes,
        status=SpaceStatus.READY,
        storage_path=str(path),
        created_at=now,
        updated_at=now,
    )
    provisioned = event.caused(
        SpaceProvisioned(user_id=space.user_id, space_id=space.id, quota_bytes=space.quota_bytes),
        producer=PRODUCER,
    )
    try:
        session.execute(
            INSERT_SPACE_AND_EVENT,
            {
                "space_id": space.id,
                "user_id": space.user_id,
                "plan": plan.value,
                "quota_bytes": space.quota_bytes,
                "status": SpaceStatus.READY.value,
                "storage_path": space.storage_path,
                "now": now,
                **outbox_values(provisioned),
            },
        )
    except IntegrityError as exc:
        if _violates(exc, SPACE_USER_UNIQUE):
            raise SpaceBeingProvisionedError(signup.user_id) from exc
        raise
    log.debug(
        "space.provisioned",
        user_id=str(space.user_id),
        space_id=str(space.id),
        plan=plan.value,
        quota_bytes=space.quota_bytes,
        event_id=str(provisioned.id),
    )
    return space


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag: Any = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint
