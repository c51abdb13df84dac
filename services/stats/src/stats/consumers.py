"""Message handlers of stats: glue between the broker runtime and one action each."""

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from signup_shared.db import transaction
from signup_shared.events import Envelope
from stats import actions


def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    actions.record_signup(session, event)


def on_space_provisioned(session: Session, event: Envelope[Any]) -> None:
    actions.record_activation(session, event)


@transaction
def prune_inbox(session: Session, retention: timedelta) -> int:
    """The consumer process's periodic housekeeping job, one transaction per run."""
    return actions.forget_handled_events(session, retention)
