"""Persistence of users' storage spaces (plus this service's outbox and inbox): every statement
provisioning runs."""

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    String,
    UniqueConstraint,
    bindparam,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from signup_shared.events import Envelope
from signup_shared.inbox import InboxMixin
from signup_shared.outbox import OutboxMixin, outbox_values

SPACE_USER_UNIQUE = "uq_spaces_user_id"
SPACE_PRIMARY_KEY = "spaces_pkey"
# A space's id derives from its user's id, so either constraint means "this user has a space".
SPACE_TAKEN = frozenset({SPACE_USER_UNIQUE, SPACE_PRIMARY_KEY})


class Base(DeclarativeBase):
    pass


class Plan(enum.StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


class SpaceStatus(enum.StrEnum):
    READY = "ready"


def _now() -> datetime:
    return datetime.now(UTC)


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


class Space(Base):
    """One user's storage space; a user has at most one."""

    __tablename__ = "spaces"
    __table_args__ = (
        UniqueConstraint("user_id", name=SPACE_USER_UNIQUE),
        CheckConstraint("quota_bytes >= 0", name="ck_spaces_quota_bytes_non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    plan: Mapped[Plan] = mapped_column(Enum(Plan, name="plan", values_callable=_values))
    quota_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[SpaceStatus] = mapped_column(
        Enum(SpaceStatus, name="space_status", values_callable=_values),
        default=SpaceStatus.READY,
    )
    storage_path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxMessage(InboxMixin, Base):
    pass


class SpaceTakenError(Exception):
    """Another transaction recorded a space for this user first (``SPACE_TAKEN``)."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} has a space recorded by another transaction")


# A user's space, if any (built once: only its parameter changes from call to call).
EXISTING_SPACE = select(Space).where(Space.user_id == bindparam("user_id"))
# The space and its outbox row in one statement (one round trip, compiled once): the outbox row
# is selected from the inserted space, so both are written or neither is, in the caller's
# transaction. No ON CONFLICT: a concurrent insert for the same user fails on SPACE_TAKEN.
INSERT_SPACE_AND_EVENT = text(
    """
    WITH space AS (
        INSERT INTO spaces
            (id, user_id, plan, quota_bytes, status, storage_path, created_at, updated_at)
        VALUES (:space_id, :user_id, CAST(:plan AS plan), :quota_bytes,
                CAST(:status AS space_status), :storage_path, :now, :now)
        RETURNING id
    )
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    SELECT CAST(:event_id AS uuid), CAST(:routing_key AS varchar), CAST(:event_type AS varchar),
           CAST(:version AS integer), CAST(:producer AS varchar),
           CAST(:correlation_id AS varchar), CAST(:payload AS text), CAST(:traceparent AS varchar)
    FROM space
    """
)


def space_of(session: Session, user_id: uuid.UUID) -> Space | None:
    """The user's space, if one is recorded."""
    return session.scalar(EXISTING_SPACE, {"user_id": user_id})


def add_space(session: Session, space: Space, event: Envelope[Any]) -> None:
    """Insert ``space`` and ``event`` (into the outbox) together, in the caller's transaction.

    Raises SpaceTakenError when the user has a space already; other database errors as they are.
    """
    try:
        session.execute(
            INSERT_SPACE_AND_EVENT,
            {
                "space_id": space.id,
                "user_id": space.user_id,
                "plan": space.plan.value,
                "quota_bytes": space.quota_bytes,
                "status": space.status.value,
                "storage_path": space.storage_path,
                "now": space.created_at,
                **outbox_values(event),
            },
        )
    except IntegrityError as exc:
        diag: Any = getattr(exc.orig, "diag", None)
        if getattr(diag, "constraint_name", None) in SPACE_TAKEN:
            raise SpaceTakenError(space.user_id) from exc
        raise


class ErasedUser(Base):
    """A user erased here: their space is deleted and never provisioned again."""

    __tablename__ = "erased_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID]
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Provisioning and erasing a user serialise on this transaction-scoped lock of the user id, so
# an erasure never misses a space a concurrent signup step is creating, and a signup step never
# creates one after the erasure committed.
LOCK_USER = text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:user_id AS text), 0))")
IS_ERASED = text("SELECT 1 FROM erased_users WHERE user_id = :user_id")
RECORD_ERASED = text(
    """
    INSERT INTO erased_users (user_id, event_id, erased_at) VALUES (:user_id, :event_id, :now)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
    """
)
DELETE_SPACE = text("DELETE FROM spaces WHERE user_id = :user_id RETURNING id")
INSERT_EVENT = text(
    """
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    VALUES (:event_id, :routing_key, :event_type, :version, :producer, :correlation_id,
            :payload, :traceparent)
    """
)


def lock_user(session: Session, user_id: uuid.UUID) -> None:
    session.execute(LOCK_USER, {"user_id": user_id})


def is_erased(session: Session, user_id: uuid.UUID) -> bool:
    return session.execute(IS_ERASED, {"user_id": user_id}).first() is not None


def erase_user(
    session: Session, user_id: uuid.UUID, event_id: uuid.UUID, now: datetime
) -> tuple[bool, bool]:
    """Record the erasure and delete the user's space row: (newly erased, a space was there)."""
    params = {"user_id": user_id, "event_id": event_id, "now": now}
    new = session.execute(RECORD_ERASED, params).first() is not None
    had_space = session.execute(DELETE_SPACE, {"user_id": user_id}).first() is not None
    return new, had_space


def add_event(session: Session, event: Envelope[Any]) -> None:
    session.execute(INSERT_EVENT, outbox_values(event))
