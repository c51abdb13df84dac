"""Message handlers of accounts: each subscription declared next to the one action it calls."""

from collections.abc import Sequence
from typing import Any

from prometheus_client import Gauge
from sqlalchemy.orm import Session, sessionmaker

from accounts import actions, erasure
from signup_contracts import UserErased
from signup_shared.db import transaction
from signup_shared.events import Envelope, SpaceProvisioned
from signup_shared.messaging.handlers import event_handler

ANY_HOLDER = "*"
"""``UserErased`` comes from every holder, each on its own routing key: one queue for all."""

ERASURE_OLDEST_PENDING = Gauge(
    "accounts_erasure_oldest_pending_seconds",
    "Age of the oldest erasure not yet confirmed by every holder (0 when none is outstanding)",
)
ERASURE_DEADLINE = Gauge(
    "accounts_erasure_deadline_seconds",
    "How long an erasure may wait for its confirmations (ACCOUNTS_ERASURE_DEADLINE_SECONDS)",
)


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


@event_handler(ANY_HOLDER, UserErased)
def on_user_erased(
    session: Session, event: Envelope[Any], *, erasure_holders: Sequence[str]
) -> None:
    """Count a holder's confirmation; the last one completes the erasure.

    Queue ``accounts.user_erased``, bound to ``*.user_erased``. A second confirmation from the
    same holder (a replay, another event id) counts nothing. A confirmation from a service that
    is not a holder, whose producer and ``holder`` disagree, or for a user never erased, is
    dead-lettered with the reason.
    """
    erasure.confirm_erasure(session, event, erasure_holders)


SUBSCRIPTIONS = (on_space_provisioned, on_user_erased)


@transaction
def _oldest_pending_age(session: Session) -> float:
    return erasure.oldest_outstanding_age(session)


def erasure_age_probe(sessions: sessionmaker[Session], deadline_seconds: float) -> Any:
    """A job that sets ``accounts_erasure_oldest_pending_seconds``; the alert compares it with
    ``accounts_erasure_deadline_seconds``, set here from the setting."""
    ERASURE_DEADLINE.set(deadline_seconds)

    def probe() -> float:
        with sessions() as session:
            age = float(_oldest_pending_age(session, persist=False))
        ERASURE_OLDEST_PENDING.set(age)
        return age

    return probe
