"""Message handlers of provisioning: each subscription declared next to the action it calls."""

from typing import Any

from sqlalchemy.orm import Session

from provisioning import actions
from provisioning.adapters.storage import SpaceStorage
from signup_contracts import UserErasureRequested, UserSignedUpV2
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.handlers import event_handler


@event_handler("accounts", UserSignedUp, UserSignedUpV2)
def on_user_signed_up(session: Session, event: Envelope[Any], *, storage: SpaceStorage) -> None:
    actions.provision_space(session, storage, event)


@event_handler("accounts", UserErasureRequested)
def on_user_erasure_requested(
    session: Session, event: Envelope[Any], *, storage: SpaceStorage
) -> None:
    """Delete the user's space and confirm (``UserErased`` through the outbox)."""
    actions.erase_user(session, storage, event)


SUBSCRIPTIONS = (on_user_signed_up, on_user_erasure_requested)
