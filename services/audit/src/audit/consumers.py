"""Message handlers of audit: each subscription declared next to the action it calls.

Both versions of ``UserSignedUp`` are taken (accounts publishes both during the migration
window, with one event id: the inbox handles the second copy as a duplicate).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from audit import actions
from signup_contracts import UserSignedUpV2
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.handlers import event_handler


@event_handler("accounts", UserSignedUp, UserSignedUpV2)
def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    actions.record_signup(session, event)


@on_user_signed_up.batch
def on_users_signed_up(session: Session, events: Sequence[Envelope[Any]]) -> None:
    actions.record_signups(session, events)


SUBSCRIPTIONS = (on_user_signed_up,)
