"""Business rules of provisioning: giving every new user a storage space sized by their plan."""

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from provisioning import models
from provisioning.adapters.storage import SpaceRequest, SpaceStorage
from provisioning.models import Plan, Space, SpaceStatus
from signup_contracts import UserErased, UserErasureRequested
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
) -> Space | None:
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

    A user erased before (``erase_user``) gets no space (None): the event is a late copy, a
    replay or lost a race with the erasure, which serialises with this step on the user.
    """
    signup = event.data
    models.lock_user(session, signup.user_id)
    if models.is_erased(session, signup.user_id):
        log.info("space.not_provisioned_erased_user", user_id=str(signup.user_id))
        return None
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


def erase_user(
    session: Session,
    storage: SpaceStorage,
    event: Envelope[UserErasureRequested],
    now: datetime | None = None,
) -> Envelope[UserErased] | None:
    """Delete the user's space (files and row) and confirm with ``UserErased`` (outbox).

    Policy: the space is deleted, not archived (its files are the user's data). Serialised with
    ``provision_space`` on the user, and recorded, so no later ``UserSignedUp`` re-creates it.
    The directory goes before the commit; if the commit fails, the redelivered request finds the
    row and deletes again (deleting is idempotent). A second request erases again and confirms
    nothing new (None).
    """
    now = now or datetime.now(UTC)
    user_id = event.data.user_id
    models.lock_user(session, user_id)
    new, had_space = models.erase_user(session, user_id, event.id, now)
    deleted = storage.delete_space(user_id)
    log.info(
        "user.erased", user_id=str(user_id), space_row=had_space, space_files=deleted, first=new
    )
    if not new:
        return None
    confirmation = event.caused(
        UserErased(user_id=user_id, holder=PRODUCER, erased_at=now), producer=PRODUCER
    )
    models.add_event(session, confirmation)
    return confirmation
