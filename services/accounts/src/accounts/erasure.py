"""The right to erasure in accounts: record the request, erase, count the holders' confirmations.

``request_erasure`` (``DELETE /users/{id}``) erases the user's personal data in accounts, in
the same transaction: the users row keeps its id and dates, its email, name, phone and locale
become null; the user's data key is deleted (every sealed ``UserSignedUp`` v3 copy, in the
event history or anywhere, becomes unreadable); the user's clear ``UserSignedUp`` copies still
in the outbox (waiting, or kept after sending) are rewritten redacted
(``signup_contracts.redact_user_signed_up``), so neither the relay nor the outbox table can
bring them back. It writes ``UserErasureRequested`` to the outbox
and records accounts' own confirmation. Each other holder answers with ``UserErased``
(``confirm_erasure``); the erasure is complete when every configured holder has confirmed.

Nothing here builds SQL or commits.
"""

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from accounts import erasure_models as store
from signup_contracts import (
    ERASURE_HOLDERS,
    UserErased,
    UserErasureRequested,
    UserSignedUpV3,
    redact_user_signed_up,
)
from signup_shared.errors import PermanentError
from signup_shared.events import Envelope

PRODUCER = "accounts"
HOLDERS: tuple[str, ...] = (PRODUCER, *ERASURE_HOLDERS)
"""Who must confirm an erasure by default (``ACCOUNTS_ERASURE_HOLDERS``)."""

log = structlog.get_logger(__name__)


class ErasureStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"


class UnknownUserError(Exception):
    pass


class UnexpectedConfirmationError(PermanentError):
    """A ``UserErased`` accounts cannot count: no such erasure, or not from a known holder."""


@dataclass(frozen=True)
class ErasureState:
    user_id: uuid.UUID
    requested_at: datetime
    requested_by: str
    completed_at: datetime | None
    confirmed: tuple[str, ...]
    waiting_for: tuple[str, ...]

    @property
    def status(self) -> ErasureStatus:
        return ErasureStatus.COMPLETE if self.completed_at else ErasureStatus.PENDING


def request_erasure(
    session: Session,
    user_id: uuid.UUID,
    requested_by: str,
    *,
    correlation_id: str,
    holders: Sequence[str] = HOLDERS,
    now: datetime | None = None,
) -> tuple[ErasureState, bool]:
    """Erase the user in accounts and ask every holder to; ``(state, True)`` the first time.

    A second request for the same user changes nothing and returns the state (``False``): the
    user's row is locked first, so concurrent requests record one erasure and one event. An
    unknown user raises ``UnknownUserError``.
    """
    now = now or datetime.now(UTC)
    if not store.lock_user(session, user_id):
        raise UnknownUserError(str(user_id))
    if store.erasure_of(session, user_id) is not None:
        state = erasure_state(session, user_id, holders)
        assert state is not None
        return state, False
    event = Envelope.wrap(
        UserErasureRequested(user_id=user_id, requested_at=now),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=now,
    )
    store.record_erasure(session, user_id, requested_by, now, [event])
    shredded = store.delete_user_key(session, user_id)  # every sealed (v3) copy: unreadable
    redacted = 0
    for position, payload in store.signup_payloads(session, user_id):
        if payload.get("version") == UserSignedUpV3.version:
            continue  # sealed: nothing in clear, and its key is gone
        store.rewrite_payload(session, position, redact_user_signed_up(payload))
        redacted += 1
    _confirm(session, user_id, PRODUCER, holders, now)
    log.info(
        "erasure.requested",
        user_id=str(user_id),
        requested_by=requested_by,
        event_id=str(event.id),
        outbox_rows_redacted=redacted,
        data_key_deleted=shredded,
    )
    state = erasure_state(session, user_id, holders)
    assert state is not None
    return state, True


def confirm_erasure(
    session: Session,
    event: Envelope[UserErased],
    holders: Sequence[str] = HOLDERS,
    now: datetime | None = None,
) -> bool:
    """Count a holder's ``UserErased``; True when it completed the erasure.

    A confirmation counts once per holder (a redelivery or a second event changes nothing). One
    whose envelope producer and ``holder`` disagree, from a service that is not a holder, or for
    a user accounts never erased, is refused for good (``UnexpectedConfirmationError``: it goes
    to the dead-letter queue with the reason).
    """
    holder, user_id = event.producer, event.data.user_id
    if holder != event.data.holder or holder not in holders:
        raise UnexpectedConfirmationError(
            f"UserErased from {holder} (holder {event.data.holder}): not a holder of {holders}"
        )
    if store.erasure_of(session, user_id) is None:
        raise UnexpectedConfirmationError(f"no erasure of user {user_id} to confirm")
    return _confirm(session, user_id, holder, holders, now or datetime.now(UTC))


def _confirm(
    session: Session, user_id: uuid.UUID, holder: str, holders: Sequence[str], now: datetime
) -> bool:
    counted = store.confirm(session, user_id, holder, now)
    confirmed = set(store.confirmed_holders(session, user_id))
    completed = set(holders) <= confirmed and store.complete(session, user_id, now)
    log.info(
        "erasure.confirmed" if counted else "erasure.confirmation_repeated",
        user_id=str(user_id),
        holder=holder,
        completed=completed,
    )
    return completed


def erasure_state(
    session: Session, user_id: uuid.UUID, holders: Sequence[str] = HOLDERS
) -> ErasureState | None:
    """The erasure of the user, or None if they were never erased."""
    erasure = store.erasure_of(session, user_id)
    if erasure is None:
        return None
    return _state(erasure, set(store.confirmed_holders(session, user_id)), holders)


def _state(erasure: store.Erasure, confirmed: set[str], holders: Sequence[str]) -> ErasureState:
    return ErasureState(
        user_id=erasure.user_id,
        requested_at=erasure.requested_at,
        requested_by=erasure.requested_by,
        completed_at=erasure.completed_at,
        confirmed=tuple(sorted(confirmed)),
        waiting_for=tuple(h for h in holders if h not in confirmed)
        if erasure.completed_at is None
        else (),
    )


def erasures(
    session: Session, holders: Sequence[str] = HOLDERS, *, outstanding_only: bool = True
) -> list[ErasureState]:
    """Erasures (oldest first), with who has confirmed and who not yet."""
    found = store.erasures(session, outstanding_only=outstanding_only)
    confirmations = store.confirmations_of(session, [e.user_id for e in found])
    return [_state(e, confirmations[e.user_id], holders) for e in found]


def data_keys(session: Session, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    """The data keys of ``user_ids`` that still exist: an erased user has none (``POST
    /keys/lookup``, how readers of the event history unseal ``UserSignedUp`` v3)."""
    return store.user_keys(session, list(dict.fromkeys(user_ids)))


def oldest_outstanding_age(session: Session, now: datetime | None = None) -> float:
    """Seconds since the oldest erasure not confirmed by every holder was requested; 0 if none."""
    oldest = store.oldest_outstanding(session)
    if oldest is None:
        return 0.0
    return max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())
