"""Glue between the broker runtime (and the sweeper) and the actions of notifications.

The subscription owes the welcome messages in the exactly-once transaction (a whole batch of
events at once); after that commit it delivers what the events still owe, each notification in
a transaction of its own on its channel's lane (``ChannelPools``), so a slow email server never
holds back an SMS.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from notifications import actions
from notifications.actions import Channel, DeliveryResult, Outcome, PendingRef, Senders
from notifications.adapters.channel_pools import ChannelPools
from signup_contracts import UserErasureRequested, UserSignedUpV2
from signup_shared.db import transaction
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.handlers import event_handler

log = structlog.get_logger(__name__)


@event_handler("accounts", UserSignedUp, UserSignedUpV2)
def on_user_signed_up(session: Session, event: Envelope[Any]) -> None:
    """Owe the new user a welcome email (and SMS if they gave a phone number).

    A second ``UserSignedUp`` for a user already owed a welcome (same ``user_id``, another event
    id: a history replayed into the live service, two contract versions side by side, or a
    forged message) is a duplicate: nothing more is owed, no second welcome goes out, and its
    message is acked. It is not a correction: the first address stays the one written to.
    """
    actions.owe_welcome(session, [event], datetime.now(UTC))


@on_user_signed_up.batch
def owe_welcome_batch(session: Session, events: Sequence[Envelope[Any]]) -> None:
    """All the new events of a batch at once: one INSERT (a failure replays them one by one)."""
    actions.owe_welcome(session, events, datetime.now(UTC))


@on_user_signed_up.after_commit
def deliver_welcome(
    events: Sequence[Envelope[Any]], *, delivery: "Delivery"
) -> dict[uuid.UUID, Exception]:
    """Deliver what the events still owe (also on a redelivery: that is how the broker's retries
    reach a notification whose sending failed); the error each event's message answers for."""
    return delivery.for_events([event.id for event in events])


@event_handler("accounts", UserErasureRequested)
def on_user_erasure_requested(session: Session, event: Envelope[Any]) -> None:
    """Erase the user's data here and confirm (``UserErased`` through the outbox)."""
    actions.erase_user(session, event, datetime.now(UTC))


SUBSCRIPTIONS = (on_user_signed_up, on_user_erasure_requested)


@transaction
def _pending_of_events(session: Session, event_ids: Sequence[uuid.UUID]) -> list[PendingRef]:
    return actions.pending_of_events(session, event_ids)


@transaction
def _stale_pending(session: Session, older_than: datetime, limit: int) -> list[PendingRef]:
    return actions.stale_pending(session, older_than, limit)


@transaction
def _deliver(session: Session, notification_id: uuid.UUID, senders: Senders) -> DeliveryResult:
    return actions.deliver(session, notification_id, senders, datetime.now(UTC))


@transaction
def _pending_by_channel(session: Session) -> dict[Channel, tuple[int, float]]:
    return actions.pending_by_channel(session, datetime.now(UTC))


@dataclass
class Delivery:
    """Delivers owed notifications, each in its own committed transaction on its channel's lane.

    ``wait``: how long the subscription waits for a batch's deliveries before answering the
    broker; a delivery still running then (a slow provider) goes on within its own deadline,
    and its event is retried later (which waits on the same delivery, never starts a second).
    ``reads``: sessions for the lookups of what is owed, which need no transaction
    (``signup_shared.db.make_read_session_factory``: one round trip each instead of three);
    ``sessions`` if not given.
    """

    sessions: sessionmaker[Session]
    senders: Senders
    lanes: ChannelPools[uuid.UUID, DeliveryResult]
    wait: float | None
    reads: sessionmaker[Session] | None = None

    def _read(self) -> Session:
        return (self.reads or self.sessions)()

    def for_events(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Exception]:
        with self._read() as session:
            pending = _pending_of_events(session, event_ids, persist=False)
        return actions.errors_by_event(pending, self.run(pending))

    def sweep(self, grace: timedelta, batch_size: int) -> list[DeliveryResult]:
        """Deliver one batch of notifications left pending for longer than ``grace``."""
        with self._read() as session:
            stale = _stale_pending(session, datetime.now(UTC) - grace, batch_size, persist=False)
        results = list(self.run(stale).values())
        if results:
            counts = {outcome.value: 0 for outcome in Outcome}
            for result in results:
                counts[result.outcome.value] += 1
            log.info("sweep.finished", stale=len(stale), **counts)
        return results

    def pending_by_channel(self) -> dict[Channel, tuple[int, float]]:
        with self._read() as session:
            return _pending_by_channel(session, persist=False)

    def run(self, pending: Sequence[PendingRef]) -> dict[uuid.UUID, DeliveryResult]:
        jobs = [(ref.id, ref.channel.value, self._job(ref.id)) for ref in pending]
        return self.lanes.run(jobs, self.wait)

    def _job(self, notification_id: uuid.UUID) -> Any:
        return lambda: self.one(notification_id)

    def one(self, notification_id: uuid.UUID) -> DeliveryResult:
        """Deliver one notification in its own transaction; a crash is a result, never raised."""
        try:
            with self.sessions() as session:
                return _deliver(session, notification_id, self.senders)
        except Exception as exc:
            log.exception("notification.delivery_crashed", notification_id=str(notification_id))
            return DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)
