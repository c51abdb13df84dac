"""Message handlers of accounts: each subscription declared next to the one action it calls."""

from typing import Any

from sqlalchemy.orm import Session

from accounts import actions
from signup_shared.events import Envelope, SpaceProvisioned
from signup_shared.messaging.handlers import event_handler


@event_handler("provisioning", SpaceProvisioned)
def on_space_provisioned(session: Session, event: Envelope[Any]) -> None:
    actions.activate_subscription(session, event)


SUBSCRIPTIONS = (on_space_provisioned,)
