"""Business rules of audit: who signed up, recorded once per user.

The first ``UserSignedUp`` recorded for a user wins; a later one for the same user (a new
event id: the v1/v2 copy of the same signup has the same id and never gets here, the inbox
absorbs it) is ignored and only logged.
"""

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from audit import models

log = structlog.get_logger(__name__)


def record_signup(session: Session, event: Any) -> None:
    """One user signed up (an ``Envelope`` of ``UserSignedUp`` v1 or v2)."""
    record_signups(session, [event])


def record_signups(session: Session, events: Sequence[Any]) -> None:
    """Users signed up: each recorded once, with the first of their events in the batch."""
    first: dict[object, dict[str, object]] = {}
    for event in events:
        first.setdefault(
            event.data.user_id,
            {
                "user_id": event.data.user_id,
                "first_event_id": event.id,
                "plan": event.data.plan,
                "signed_up_at": event.data.signed_up_at,
            },
        )
    new = models.add_users(session, list(first.values()))
    if new < len(events):
        log.debug("audit.users_already_recorded", count=len(events) - new)


def count_users(session: Session) -> int:
    return models.count_users(session)
