"""Persistence of users and their subscriptions (plus this service's outbox and inbox).

The mappings, and every statement accounts runs, behind functions named for what they do. The
statements are constants (compiled once, only their parameters change); the functions run them in
the caller's transaction and never commit.
"""

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    mapped_column,
    relationship,
)

from signup_shared.events import Envelope
from signup_shared.inbox import InboxMixin
from signup_shared.outbox import OutboxMixin, outbox_values

EMAIL_UNIQUE_INDEX = "uq_users_email_lower"
OUTBOX_COPY_UNIQUE = "uq_outbox_event_id_version"
LOCALE_MAX_LENGTH = 35


class Base(DeclarativeBase):
    pass


class Plan(enum.StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"


def _now() -> datetime:
    return datetime.now(UTC)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index(EMAIL_UNIQUE_INDEX, func.lower("email"), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Personal data: null once the user is erased (``erased_at``; see accounts.erasure).
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    locale: Mapped[str | None] = mapped_column(String(LOCALE_MAX_LENGTH), server_default="en")
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    subscription: Mapped["Subscription"] = relationship(back_populates="user", uselist=False)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    plan: Mapped[Plan] = mapped_column(
        Enum(Plan, name="plan", values_callable=lambda e: [m.value for m in e])
    )
    status: Mapped[SubscriptionStatus] = mapped_column(
        Enum(
            SubscriptionStatus,
            name="subscription_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=SubscriptionStatus.PENDING,
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="subscription")


class UserKey(Base):
    """The user's data key: seals the personal fields of their ``UserSignedUp`` v3 copies.

    Written with the user; deleted when the user is erased, which makes every sealed copy
    anywhere unreadable (crypto-shredding: ``signup_contracts.sealed``).
    """

    __tablename__ = "user_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(OutboxMixin, Base):
    """One copy of an event per published version: unique by (event id, version), not by id.

    During a contract's migration window one event is written once per version with the same
    event id (the id names the event, not its representation; consumers' inboxes keep one).
    """

    event_id: Mapped[uuid.UUID] = mapped_column()

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        indexes: tuple[Any, ...] = OutboxMixin.__dict__["__table_args__"].fget(cls)
        return (*indexes, UniqueConstraint("event_id", "version", name=OUTBOX_COPY_UNIQUE))


class InboxMessage(InboxMixin, Base):
    pass


class EmailTakenError(Exception):
    """The email index already holds this address (in any letter case)."""


class UnstorableValueError(Exception):
    """A column refused a value: ``field`` names it (``body`` when the database does not say)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


# The user, their data key, their subscription and the event's outbox rows in one statement (one
# round trip, compiled once), in the caller's transaction: all are written or none is. The key's,
# the subscription's and the outbox's rows are selected from the inserted user, so they follow
# it; the foreign keys are checked at the end of the statement, when the user row exists. The
# event's copies (one per published version, one event id, each with its version's routing key)
# come as parallel arrays and take outbox positions in the order given, so the first copy is
# published first.
INSERT_SIGNUP = text(
    """
    WITH new_user AS (
        INSERT INTO users (id, email, full_name, phone, locale, created_at)
        VALUES (:user_id, :email, :full_name, :phone, :locale, :now)
        RETURNING id
    ), new_key AS (
        INSERT INTO user_keys (user_id, key, created_at)
        SELECT new_user.id, CAST(:data_key AS bytea), :now FROM new_user
        WHERE CAST(:data_key AS bytea) IS NOT NULL
    ), new_subscription AS (
        INSERT INTO subscriptions (id, user_id, plan, status, created_at)
        SELECT :subscription_id, new_user.id, CAST(:plan AS plan),
               CAST(:status AS subscription_status), :now
        FROM new_user
        RETURNING id
    )
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    SELECT CAST(:event_id AS uuid), copy.routing_key, CAST(:event_type AS varchar),
           copy.version, CAST(:producer AS varchar), CAST(:correlation_id AS varchar),
           copy.payload, CAST(:traceparent AS varchar)
    FROM new_subscription,
         unnest(CAST(:routing_keys AS varchar[]), CAST(:versions AS integer[]),
                CAST(:payloads AS text[]))
             WITH ORDINALITY AS copy(routing_key, version, payload, rank)
    ORDER BY copy.rank
    """
)


def add_signup(
    session: Session,
    *,
    user_id: uuid.UUID,
    email: str,
    full_name: str,
    phone: str | None,
    locale: str,
    subscription_id: uuid.UUID,
    plan: Plan,
    status: SubscriptionStatus,
    created_at: datetime,
    events: Sequence[Envelope[Any]],
    data_key: bytes | None = None,
) -> None:
    """Insert the user, their data key (if given: it seals the event's v3 copy), their
    subscription and ``events`` into the outbox, all or nothing.

    ``events`` are the copies of one event (one id; one version and routing key each), written
    in the order given. Raises ``EmailTakenError`` when the email is taken in any letter case
    (also when a concurrent insert wins the race) and ``UnstorableValueError`` when a column
    refuses a value; any other refusal of the database is raised as it is.
    """
    if not events or len({e.id for e in events}) != 1:
        raise ValueError("add_signup takes the copies of one event: one id")
    copies = [outbox_values(event) for event in events]
    values = {"email": email, "full_name": full_name, "phone": phone, "locale": locale}
    try:
        session.execute(
            INSERT_SIGNUP,
            {
                "user_id": user_id,
                **values,
                "data_key": data_key,
                "now": created_at,
                "subscription_id": subscription_id,
                "plan": plan.value,
                "status": status.value,
                **copies[0],
                "routing_keys": [copy["routing_key"] for copy in copies],
                "versions": [copy["version"] for copy in copies],
                "payloads": [copy["payload"] for copy in copies],
            },
        )
    except IntegrityError as exc:
        if violated_constraint(exc) == EMAIL_UNIQUE_INDEX:
            raise EmailTakenError(EMAIL_UNIQUE_INDEX) from exc
        raise
    except DataError as exc:
        raise UnstorableValueError(*unstorable(values)) from exc


def unstorable(values: Mapping[str, str | None]) -> tuple[str, str]:
    """Which of the users columns' ``values`` its column cannot hold (PostgreSQL does not say)."""
    for field, value in values.items():
        if value is None:
            continue
        limit = getattr(User.__table__.c[field].type, "length", None)
        if limit is not None and len(value) > limit:
            return field, f"longer than {limit} characters"
        if "\x00" in value:
            return field, "contains a NUL character"
    return "body", "cannot be stored"


def violated_constraint(exc: IntegrityError | DataError) -> str | None:
    """The name of the constraint or index the database reported, if it named one."""
    diag: Any = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name is not None else None


USER_WITH_SUBSCRIPTION = (
    select(User, Subscription).join(Subscription).where(User.id == bindparam("user_id"))
)


def user_with_subscription(
    session: Session, user_id: uuid.UUID
) -> tuple[User, Subscription] | None:
    """The user and their subscription, or None when there is no such user."""
    row = session.execute(USER_WITH_SUBSCRIPTION, {"user_id": user_id}).first()
    return None if row is None else (row[0], row[1])


# The UPDATE takes the row lock and re-checks the status after any concurrent activation
# commits, so a subscription changes from pending to active at most once.
ACTIVATE_PENDING = (
    update(Subscription)
    .where(
        Subscription.user_id == bindparam("of_user"),
        Subscription.status == SubscriptionStatus.PENDING,
    )
    .values(status=SubscriptionStatus.ACTIVE, activated_at=bindparam("when"))
    .returning(Subscription.id)
    .execution_options(synchronize_session=False)
)
SUBSCRIPTION_OF_USER = select(Subscription.id).where(Subscription.user_id == bindparam("of_user"))


def activate_pending_subscription(session: Session, user_id: uuid.UUID, at: datetime) -> bool:
    """Make the user's subscription active as of ``at`` if it is pending; True when it changed."""
    changed = session.execute(ACTIVATE_PENDING, {"of_user": user_id, "when": at}).first()
    return changed is not None


def has_subscription(session: Session, user_id: uuid.UUID) -> bool:
    return session.execute(SUBSCRIPTION_OF_USER, {"of_user": user_id}).first() is not None
