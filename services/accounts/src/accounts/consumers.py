"""Message handlers of accounts: glue between the broker runtime and one action each."""

from typing import Any

from sqlalchemy.orm import Session

from accounts import actions
from signup_shared.events import Envelope


def on_space_provisioned(session: Session, event: Envelope[Any]) -> None:
    actions.activate_subscription(session, event)
