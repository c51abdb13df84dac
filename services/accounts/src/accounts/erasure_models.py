"""Persistence of API keys and erasures (accounts' part of the right to erasure).

- ``api_keys``: one row per issued key: the client it belongs to, its scopes, the SHA-256 of its
  secret (never the secret), when it expires and when it was revoked.
- ``erasures``: one row per erased user (the request, and when every holder had confirmed).
- ``erasure_confirmations``: one row per (user, holder) that confirmed.

Every statement is a function here, run in the caller's transaction, never committed.
"""

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    DateTime,
    ForeignKey,
    String,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from accounts.models import Base, OutboxMessage, User, UserKey
from signup_shared.events import Envelope
from signup_shared.outbox import outbox_values


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Erasure(Base):
    __tablename__ = "erasures"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ErasureConfirmation(Base):
    __tablename__ = "erasure_confirmations"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("erasures.user_id"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), primary_key=True)
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# API keys ---------------------------------------------------------------------------------------
# populate_existing: the rows are updated by statements, never through the identity map.
KEY_BY_ID = (
    select(ApiKey).where(ApiKey.id == bindparam("key_id")).execution_options(populate_existing=True)
)
KEYS = select(ApiKey).order_by(ApiKey.client, ApiKey.created_at)
REVOKE_KEY = (
    update(ApiKey)
    .where(ApiKey.id == bindparam("key_id"), ApiKey.revoked_at.is_(None))
    .values(revoked_at=bindparam("when"))
    .returning(ApiKey.id)
    .execution_options(synchronize_session=False)
)


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def key_by_id(session: Session, key_id: str) -> ApiKey | None:
    return session.execute(KEY_BY_ID, {"key_id": key_id}).scalars().first()


def keys(session: Session) -> list[ApiKey]:
    return list(session.execute(KEYS).scalars())


def revoke_key(session: Session, key_id: str, when: datetime) -> bool:
    """Revoke the key if it is not revoked yet; True when it changed."""
    return session.execute(REVOKE_KEY, {"key_id": key_id, "when": when}).first() is not None


# Erasures ---------------------------------------------------------------------------------------
# The user's row is locked first (FOR UPDATE): a second erasure of the same user waits here and
# then finds the erasure row, so the request is recorded and the event written once.
LOCK_USER = select(User.id).where(User.id == bindparam("user_id")).with_for_update()
ERASURE_OF = (
    select(Erasure)
    .where(Erasure.user_id == bindparam("user_id"))
    .execution_options(populate_existing=True)
)
CONFIRMED_HOLDERS = (
    select(ErasureConfirmation.holder)
    .where(ErasureConfirmation.user_id == bindparam("user_id"))
    .order_by(ErasureConfirmation.holder)
)
ERASE_USER = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(email=None, full_name=None, phone=None, locale=None, erased_at=bindparam("when"))
    .execution_options(synchronize_session=False)
)
# The user's UserSignedUp copies still in the outbox (waiting, parked or kept after sending
# for the retention period). A scan of the outbox: it holds hours of events, and erasures are
# rare; the rows found are locked so the relay cannot publish one while it is rewritten.
SIGNUP_OUTBOX_ROWS = text(
    """
    SELECT position, payload FROM outbox
    WHERE event_type = 'UserSignedUp'
      AND CAST(payload AS jsonb) -> 'data' ->> 'user_id' = :user_id_text
    FOR UPDATE
    """
)
REWRITE_PAYLOAD = (
    update(OutboxMessage)
    .where(OutboxMessage.position == bindparam("at"))
    .values(payload=bindparam("new_payload"))
    .execution_options(synchronize_session=False)
)
CONFIRM = (
    insert(ErasureConfirmation)
    .values(user_id=bindparam("user_id"), holder=bindparam("holder"), confirmed_at=bindparam("at"))
    .on_conflict_do_nothing()
    .returning(ErasureConfirmation.holder)
)
COMPLETE = (
    update(Erasure)
    .where(Erasure.user_id == bindparam("of_user"), Erasure.completed_at.is_(None))
    .values(completed_at=bindparam("at"))
    .returning(Erasure.user_id)
    .execution_options(synchronize_session=False)
)
OUTSTANDING = (
    select(Erasure)
    .where(Erasure.completed_at.is_(None))
    .order_by(Erasure.requested_at)
    .execution_options(populate_existing=True)
)
ALL_ERASURES = (
    select(Erasure).order_by(Erasure.requested_at).execution_options(populate_existing=True)
)
CONFIRMATIONS_OF = select(ErasureConfirmation.user_id, ErasureConfirmation.holder).where(
    ErasureConfirmation.user_id.in_(bindparam("user_ids", expanding=True))
)
OLDEST_OUTSTANDING = select(func.min(Erasure.requested_at)).where(Erasure.completed_at.is_(None))


# Data keys --------------------------------------------------------------------------------------
DELETE_USER_KEY = (
    delete(UserKey)
    .where(UserKey.user_id == bindparam("user_id"))
    .returning(UserKey.user_id)
    .execution_options(synchronize_session=False)
)
KEYS_OF = select(UserKey.user_id, UserKey.key).where(
    UserKey.user_id.in_(bindparam("user_ids", expanding=True))
)


def delete_user_key(session: Session, user_id: uuid.UUID) -> bool:
    """Delete the user's data key (crypto-shredding); False when they had none."""
    return session.execute(DELETE_USER_KEY, {"user_id": user_id}).first() is not None


def user_keys(session: Session, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    """The data keys that exist among ``user_ids`` (an erased user's key does not)."""
    if not user_ids:
        return {}
    rows = session.execute(KEYS_OF, {"user_ids": list(user_ids)})
    return {user_id: bytes(key) for user_id, key in rows}


def lock_user(session: Session, user_id: uuid.UUID) -> bool:
    """Lock the user's row until the transaction ends; False when there is no such user."""
    return session.execute(LOCK_USER, {"user_id": user_id}).first() is not None


def erasure_of(session: Session, user_id: uuid.UUID) -> Erasure | None:
    return session.execute(ERASURE_OF, {"user_id": user_id}).scalars().first()


def confirmed_holders(session: Session, user_id: uuid.UUID) -> list[str]:
    return list(session.execute(CONFIRMED_HOLDERS, {"user_id": user_id}).scalars())


def record_erasure(
    session: Session,
    user_id: uuid.UUID,
    requested_by: str,
    when: datetime,
    events: Sequence[Envelope[Any]],
) -> None:
    """Record the request, blank the user's personal columns and write ``events`` to the outbox."""
    session.add(Erasure(user_id=user_id, requested_at=when, requested_by=requested_by))
    session.flush()
    session.execute(ERASE_USER, {"user_id": user_id, "when": when})
    session.add_all(OutboxMessage(**outbox_values(event)) for event in events)
    session.flush()


def signup_payloads(session: Session, user_id: uuid.UUID) -> list[tuple[int, dict[str, Any]]]:
    """The user's ``UserSignedUp`` outbox rows: (position, decoded payload)."""
    rows = session.execute(SIGNUP_OUTBOX_ROWS, {"user_id_text": str(user_id)}).all()
    return [(position, json.loads(payload)) for position, payload in rows]


def rewrite_payload(session: Session, position: int, payload: dict[str, Any]) -> None:
    session.execute(REWRITE_PAYLOAD, {"at": position, "new_payload": json.dumps(payload)})


def confirm(session: Session, user_id: uuid.UUID, holder: str, when: datetime) -> bool:
    """Record the holder's confirmation; False when it had confirmed already."""
    params = {"user_id": user_id, "holder": holder, "at": when}
    return session.execute(CONFIRM, params).first() is not None


def complete(session: Session, user_id: uuid.UUID, when: datetime) -> bool:
    """Mark the erasure complete if it is not yet; True when it changed."""
    return session.execute(COMPLETE, {"of_user": user_id, "at": when}).first() is not None


def erasures(session: Session, *, outstanding_only: bool) -> list[Erasure]:
    return list(session.execute(OUTSTANDING if outstanding_only else ALL_ERASURES).scalars())


def confirmations_of(session: Session, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    found: dict[uuid.UUID, set[str]] = {user_id: set() for user_id in user_ids}
    if user_ids:
        for user_id, holder in session.execute(CONFIRMATIONS_OF, {"user_ids": list(user_ids)}):
            found[user_id].add(holder)
    return found


def oldest_outstanding(session: Session) -> datetime | None:
    """When the oldest erasure not yet confirmed by every holder was requested."""
    value: datetime | None = session.execute(OLDEST_OUTSTANDING).scalar()
    return value
