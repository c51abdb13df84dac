"""Business rules of accounts: signing up, reading a user, activating a subscription.

The rules decide; ``accounts.models`` persists. Nothing here builds SQL or commits: the caller
(a view or a consumer) owns the transaction.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session

from accounts import models
from accounts.models import Plan, SubscriptionStatus
from signup_contracts import UserSignedUpV2, seal_envelope
from signup_contracts.sealed import new_key
from signup_contracts.text_rules import DEFAULT_LOCALE
from signup_shared.events import Envelope, EventData, SpaceProvisioned, UserSignedUp

__all__ = ["Plan", "SubscriptionStatus"]

PRODUCER = "accounts"
USER_SIGNED_UP: dict[int, type[UserSignedUp] | type[UserSignedUpV2]] = {
    1: UserSignedUp,
    2: UserSignedUpV2,
}
"""The ``UserSignedUp`` versions accounts can publish (the setting picks among them)."""
PUBLISHED_VERSIONS = (2,)
"""What is published outside a migration window; during one, (2, 1): the newest first (its
outbox row goes out first), each copy on its version's routing key."""

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
    locale: str = DEFAULT_LOCALE


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
    locale: str = DEFAULT_LOCALE


def sign_up(
    session: Session,
    signup: NewSignup,
    *,
    correlation_id: str,
    now: datetime | None = None,
    versions: Sequence[int] = PUBLISHED_VERSIONS,
) -> SignupReceipt:
    """Create the user with a pending subscription and record ``UserSignedUp`` in the outbox.

    One event, one copy per published version (``versions``, in that order) with the same id,
    each on the routing key of its version (``accounts.user_signed_up``,
    ``accounts.user_signed_up.v2``): a consumer queue is bound to one of them, so it gets one
    copy; one bound to both while it switches handles the first and its inbox drops the other.
    Then the sealed copy (v3, ``accounts.user_signed_up.v3``, same id), the one the event
    history keeps: its personal fields are sealed with the user's new data key, stored with the
    user (``user_keys``) and deleted when they are erased.

    Raises ``EmailAlreadyRegisteredError`` when the email is taken in any letter case (also when
    a concurrent signup wins the race) and ``SignupRejectedError`` naming a value the database
    cannot store or the event's contract refuses.
    """
    now = now or datetime.now(UTC)
    user_id, subscription_id = uuid.uuid4(), uuid.uuid4()
    fields: dict[str, Any] = {
        "user_id": user_id,
        "subscription_id": subscription_id,
        "email": signup.email,
        "full_name": signup.full_name,
        "phone": signup.phone,
        "plan": signup.plan.value,
        "signed_up_at": now,
        "locale": signup.locale,
    }
    event_id = uuid.uuid4()
    if not versions:
        raise ValueError("sign_up needs at least one UserSignedUp version to publish")
    copies: dict[int, Envelope[Any]] = {
        version: Envelope.wrap(
            _user_signed_up(version, fields),
            producer=PRODUCER,
            correlation_id=correlation_id,
            event_id=event_id,
            occurred_at=now,
        )
        for version in {*versions, 2}
    }
    data_key = new_key()
    events = [copies[version] for version in versions]
    events.append(seal_envelope(copies[2], data_key))
    try:
        models.add_signup(
            session,
            user_id=user_id,
            email=signup.email,
            full_name=signup.full_name,
            phone=signup.phone,
            locale=signup.locale,
            subscription_id=subscription_id,
            plan=signup.plan,
            status=SubscriptionStatus.PENDING,
            created_at=now,
            events=events,
            data_key=data_key,
        )
    except models.EmailTakenError as exc:
        raise EmailAlreadyRegisteredError from exc
    except models.UnstorableValueError as exc:
        raise SignupRejectedError(exc.field, exc.reason) from exc
    log.debug(
        "user.signed_up", user_id=str(user_id), plan=signup.plan.value, event_id=str(event_id)
    )
    return SignupReceipt(user_id, subscription_id, SubscriptionStatus.PENDING)


def _user_signed_up(version: int, fields: dict[str, Any]) -> EventData:
    """The payload of ``UserSignedUp`` ``version``; ``SignupRejectedError`` if it refuses one."""
    event = USER_SIGNED_UP.get(version)
    if event is None:
        raise ValueError(f"UserSignedUp v{version} is not a version accounts publishes")
    try:
        return event.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise SignupRejectedError(field, f"UserSignedUp v{version}: {error['msg']}") from exc


def get_user(session: Session, user_id: uuid.UUID) -> UserProfile:
    found = models.user_with_subscription(session, user_id)
    if found is None:
        raise UserNotFoundError(str(user_id))
    user, subscription = found
    if user.email is None or user.full_name is None:  # erased (see accounts.erasure)
        raise UserNotFoundError(str(user_id))
    return UserProfile(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        phone=user.phone,
        plan=subscription.plan,
        subscription_id=subscription.id,
        status=subscription.status,
        created_at=user.created_at,
        locale=user.locale or DEFAULT_LOCALE,
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
