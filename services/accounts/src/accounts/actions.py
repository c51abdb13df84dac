"""Business rules of accounts: signing up, reading a user, activating a subscription."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from accounts.models import Plan, Subscription, SubscriptionStatus, User
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.outbox import outbox_values

PRODUCER = "accounts"
EMAIL_UNIQUE_INDEX = "uq_users_email_lower"
CONSTRAINT_FIELDS = {EMAIL_UNIQUE_INDEX: "email"}

log = structlog.get_logger(__name__)


class EmailAlreadyRegisteredError(Exception):
    def __init__(self) -> None:
        super().__init__("a user with this email already exists")


class UserNotFoundError(Exception):
    pass


class SignupRejectedError(Exception):
    """The database refused a value of the signup (callers should have caught it earlier)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class NewSignup:
    email: str
    full_name: str
    plan: Plan
    phone: str | None = None


@dataclass(frozen=True)
class SignupReceipt:
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    status: SubscriptionStatus


@dataclass(frozen=True)
class UserProfile:
    user_id: uuid.UUID
    email: str
    full_name: str
    phone: str | None
    plan: Plan
    subscription_id: uuid.UUID
    status: SubscriptionStatus
    created_at: datetime


# The user, their pending subscription and the UserSignedUp outbox row in one statement (one
# round trip, compiled once), in the caller's transaction: all three are written or none is.
# The subscription's and the outbox's rows are selected from the inserted user, so they follow
# it; the foreign key is checked at the end of the statement, when the user row exists.
INSERT_SIGNUP = text(
    """
    WITH new_user AS (
        INSERT INTO users (id, email, full_name, phone, created_at)
        VALUES (:user_id, :email, :full_name, :phone, :now)
        RETURNING id
    ), new_subscription AS (
        INSERT INTO subscriptions (id, user_id, plan, status, created_at)
        SELECT :subscription_id, new_user.id, CAST(:plan AS plan),
               CAST(:status AS subscription_status), :now
        FROM new_user
        RETURNING id
    )
    INSERT INTO outbox (event_id, routing_key, event_type, version, producer, correlation_id,
                        payload, traceparent)
    SELECT CAST(:event_id AS uuid), CAST(:routing_key AS varchar), CAST(:event_type AS varchar),
           CAST(:version AS integer), CAST(:producer AS varchar),
           CAST(:correlation_id AS varchar), CAST(:payload AS text), CAST(:traceparent AS varchar)
    FROM new_subscription
    """
)


def sign_up(
    session: Session, signup: NewSignup, *, correlation_id: str, now: datetime | None = None
) -> SignupReceipt:
    """Create the user and a pending subscription and record ``UserSignedUp`` in the outbox.

    The caller owns the transaction. Raises ``EmailAlreadyRegisteredError`` when the email is
    taken in any letter case (also when a concurrent signup wins the race).
    """
    now = now or datetime.now(UTC)
    user_id, subscription_id = uuid.uuid4(), uuid.uuid4()
    event = Envelope.wrap(
        UserSignedUp(
            user_id=user_id,
            subscription_id=subscription_id,
            email=signup.email,
            full_name=signup.full_name,
            phone=signup.phone,
            plan=signup.plan.value,
            signed_up_at=now,
        ),
        producer=PRODUCER,
        correlation_id=correlation_id,
    )
    try:
        session.execute(
            INSERT_SIGNUP,
            {
                "user_id": user_id,
                "email": signup.email,
                "full_name": signup.full_name,
                "phone": signup.phone,
                "now": now,
                "subscription_id": subscription_id,
                "plan": signup.plan.value,
                "status": SubscriptionStatus.PENDING.value,
                **outbox_values(event),
            },
        )
    except IntegrityError as exc:
        if _violates(exc, EMAIL_UNIQUE_INDEX):
            raise EmailAlreadyRegisteredError from exc
        raise
    except DataError as exc:
        field, reason = _unstorable(signup)
        raise SignupRejectedError(field, reason) from exc
    log.debug(
        "user.signed_up", user_id=str(user_id), plan=signup.plan.value, event_id=str(event.id)
    )
    return SignupReceipt(user_id, subscription_id, SubscriptionStatus.PENDING)


def _unstorable(signup: NewSignup) -> tuple[str, str]:
    """Which value of the signup its column cannot hold (the database does not say)."""
    values = {"email": signup.email, "full_name": signup.full_name, "phone": signup.phone}
    for field, value in values.items():
        if value is None:
            continue
        limit = getattr(User.__table__.c[field].type, "length", None)
        if limit is not None and len(value) > limit:
            return field, f"longer than {limit} characters"
        if "\x00" in value:
            return field, "contains a NUL character"
    return "body", "cannot be stored"


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag: Any = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def get_user(session: Session, user_id: uuid.UUID) -> UserProfile:
    row = session.execute(
        select(User, Subscription).join(Subscription).where(User.id == user_id)
    ).first()
    if row is None:
        raise UserNotFoundError(str(user_id))
    user, subscription = row
    return UserProfile(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        phone=user.phone,
        plan=subscription.plan,
        subscription_id=subscription.id,
        status=subscription.status,
        created_at=user.created_at,
    )


# Built once; only the parameters change. The UPDATE takes the row lock and re-checks the status
# after any concurrent activation commits, so a subscription is activated at most once.
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


def activate_subscription(session: Session, event: Envelope[SpaceProvisioned]) -> bool:
    """The user's space exists: their subscription becomes active (once).

    One UPDATE on the usual path; only when it changes nothing does a SELECT tell an already
    active subscription (False) from a user that does not exist (``UserNotFoundError``).
    """
    user_id = event.data.user_id
    key = {"of_user": user_id}
    activated = (
        session.execute(ACTIVATE_PENDING, {**key, "when": event.occurred_at}).first() is not None
    )
    if not activated and session.execute(SUBSCRIPTION_OF_USER, key).first() is None:
        raise UserNotFoundError(str(user_id))
    log.debug(
        "subscription.activated" if activated else "subscription.already_active",
        user_id=str(user_id),
    )
    return activated
