"""Message handlers of provisioning: glue between the broker runtime and one action each."""

from typing import Any

from sqlalchemy.orm import Session

from provisioning import actions
from provisioning.adapters.storage import SpaceStorage
from signup_shared.events import Envelope


def on_user_signed_up(session: Session, event: Envelope[Any], *, storage: SpaceStorage) -> None:
    actions.provision_space(session, storage, event)
