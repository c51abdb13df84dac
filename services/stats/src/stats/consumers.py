"""Message handlers of stats: each subscription declared next to the action it calls.

Counting aggregates: a batch of events becomes one upsert per counter row.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from signup_contracts import UserErasureRequested, UserSignedUpV2
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.messaging.handlers import event_handler
from stats import actions


@event_handler("accounts", UserSignedUp, UserSignedUpV2)
def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    actions.record_signup(session, event)


@on_user_signed_up.batch
def on_users_signed_up(session: Session, events: Sequence[Envelope[Any]]) -> None:
    actions.record_signups(session, events)


@event_handler("provisioning", SpaceProvisioned)
def on_space_provisioned(session: Session, event: Envelope[Any]) -> None:
    actions.record_activation(session, event)


@on_space_provisioned.batch
def on_spaces_provisioned(session: Session, events: Sequence[Envelope[Any]]) -> None:
    actions.record_activations(session, events)


@event_handler("accounts", UserErasureRequested)
def on_user_erasure_requested(session: Session, event: Envelope[Any]) -> None:
    """Stats holds no personal data: confirm (``UserErased`` through the outbox)."""
    actions.confirm_erasure(session, event)


SUBSCRIPTIONS = (on_user_signed_up, on_space_provisioned, on_user_erasure_requested)
