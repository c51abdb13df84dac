"""Business rules of accounts: signing up, reading a user, activating a subscription.

The rules decide; ``accounts.models`` persists. Nothing here builds SQL or commits: the caller
(a view or a consumer) owns the transaction.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from accounts import models
from accounts.models import Plan, SubscriptionStatus
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp

__all__ = ["Plan", "SubscriptionStatus"]

PRODUCER = "accounts"
# Which request field a constraint of the database stands for (for errors the views map).
CONSTRAINT_FIELDS = {models.EMAIL_UNIQUE_INDEX: "email"}

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


def sign_up(
    session: Session, signup: NewSignup, *, correlation_id: str, now: datetime | None = None
) -> SignupReceipt:
    """Create the user with a pending subscription and record ``UserSignedUp`` in the outbox.

    Raises ``EmailAlreadyRegisteredError`` when the email is taken in any letter case (also when
    a concurrent signup wins the race) and ``SignupRejectedError`` naming a value the database
    cannot store.
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
        models.add_signup(
            session,
            user_id=user_id,
            email=signup.email,
            full_name=signup.full_name,
            phone=signup.phone,
            subscription_id=subscription_id,
            plan=signup.plan,
            status=SubscriptionStatus.PENDING,
            created_at=now,
            event=event,
        )
    except models.EmailTakenError as exc:
        raise EmailAlreadyRegisteredError from exc
    except models.UnstorableValueError as exc:
        raise SignupRejectedError(exc.field, exc.reason) from exc
    log.debug(
        "user.signed_up", user_id=str(user_id), plan=signup.plan.value, event_id=str(event.id)
    )
    return SignupReceipt(user_id, subscription_id, SubscriptionStatus.PENDING)


def get_user(session: Session, user_id: uuid.UUID) -> UserProfile:
    found = models.user_with_subscription(session, user_id)
    if found is None:
        raise UserNotFoundError(str(user_id))
    user, subscription = found
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


def activate_subscription(session: Session, event: Envelope[SpaceProvisioned]) -> bool:
    """The user's space exists: their subscription becomes active, once per user.

    Keyed on the user, not on the event: whichever ``SpaceProvisioned`` for a user comes first
    activates (True, ``activated_at`` = its ``occurred_at``); any later one, under the same or
    another event id, changes nothing (False). Only when nothing changed is the subscription
    looked up, to tell "already active" from "unknown user" (``UserNotFoundError``: not
    permanent, so the consumer retries it on its schedule, then dead-letters it as exhausted).
    """
    user_id = event.data.user_id
    activated = models.activate_pending_subscription(session, user_id, event.occurred_at)
    if not activated and not models.has_subscription(session, user_id):
        raise UserNotFoundError(str(user_id))
    log.debug(
        "subscription.activated" if activated else "subscription.already_active",
        user_id=str(user_id),
    )
    return activated
