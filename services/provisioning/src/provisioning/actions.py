"""Business rules of provisioning: giving every new user a storage space sized by their plan."""

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from provisioning import models
from provisioning.adapters.storage import SpaceRequest, SpaceStorage
from provisioning.models import Plan, Space, SpaceStatus
from signup_shared.errors import TransientError
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp

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


def provision_space(
    session: Session,
    storage: SpaceStorage,
    event: Envelope[UserSignedUp],
    now: datetime | None = None,
) -> Space:
    """Create the new user's space and record ``SpaceProvisioned`` in the outbox (once per user).

    The caller owns the transaction. A user has one space: a ``UserSignedUp`` for a user who
    has one already (a redelivery, a replay, or a forgery under a new event id) gets that space
    back and changes nothing (no directory, no event). A handler that lost a race for the same
    user raises ``SpaceBeingProvisionedError`` (retried, it finds the space).

    The rows are written before the directory is made: an event the database refuses leaves
    nothing on disk, and the rows' key holds off any other handler of the user until this
    transaction ends. A directory whose transaction then fails (a lost commit, a crash before
    it) is harmless: creating it is idempotent (same path, and the space id derives from the
    user id), and the redelivered event records that very directory.
    """
    signup = event.data
    existing = models.space_of(session, signup.user_id)
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
    space = Space(
        id=request.space_id,
        user_id=request.user_id,
        plan=plan,
        quota_bytes=request.quota_bytes,
        status=SpaceStatus.READY,
        storage_path=str(storage.path_of(request.user_id)),
        created_at=now,
        updated_at=now,
    )
    provisioned = event.caused(
        SpaceProvisioned(user_id=space.user_id, space_id=space.id, quota_bytes=space.quota_bytes),
        producer=PRODUCER,
    )
    try:
        models.add_space(session, space, provisioned)
    except models.SpaceTakenError as exc:
        raise SpaceBeingProvisionedError(signup.user_id) from exc
    storage.create_space(request)
    log.debug(
        "space.provisioned",
        user_id=str(space.user_id),
        space_id=str(space.id),
        plan=plan.value,
        quota_bytes=space.quota_bytes,
        event_id=str(provisioned.id),
    )
    return space
