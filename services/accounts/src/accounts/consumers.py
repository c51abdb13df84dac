"""Message handlers of accounts: each subscription declared next to the one action it calls."""

from typing import Any

from sqlalchemy.orm import Session

from accounts import actions
from signup_shared.events import Envelope, SpaceProvisioned
from signup_shared.messaging.handlers import event_handler


@event_handler("provisioning", SpaceProvisioned)
def on_space_provisioned(session: Session, event: Envelope[Any]) -> None:
    """Activate the user's subscription: once per user, whatever the number of events.

    The inbox drops a redelivery of the same event id. A second ``SpaceProvisioned`` for the same
    user under another event id is a duplicate, never a correction: provisioning creates one
    space per user and refuses a second, so such an event comes from a replayed history, a
    contract version rolled out beside the old one, or a faulty or forged producer. It is acked
    and changes nothing: the subscription stays active with the ``activated_at`` of the first.
    An event for a user accounts does not know is retried, then dead-lettered.
    """
    actions.activate_subscription(session, event)


SUBSCRIPTIONS = (on_space_provisioned,)
