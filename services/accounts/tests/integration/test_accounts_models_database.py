"""Each model function against the real PostgreSQL, inside a transaction rolled back after."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts import models
from accounts.models import OutboxMessage, Plan, Subscription, SubscriptionStatus, User
from signup_contracts import UserSignedUpV2
from signup_shared.events import Envelope, UserSignedUp, parse_envelope

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def add(session: Session, email: str = "ada@example.com", **change: Any) -> dict[str, Any]:
    """Add a signup through ``models.add_signup``; returns the values it was given."""
    user_id, subscription_id = uuid.uuid4(), uuid.uuid4()
    values: dict[str, Any] = {
        "user_id": user_id,
        "email": email,
        "full_name": "Ada Lovelace",
        "phone": "+14155550123",
        "subscription_id": subscription_id,
        "plan": Plan.TEAM,
        "status": SubscriptionStatus.PENDING,
        "created_at": NOW,
        "locale": "en",
        **change,
    }
    values.setdefault(
        "events",
        [
            Envelope.wrap(
                UserSignedUp(
                    user_id=values["user_id"],
                    subscription_id=values["subscription_id"],
                    email=email,
                    full_name="Ada Lovelace",
                    plan="team",
                    signed_up_at=NOW,
                ),
                producer="accounts",
                correlation_id="corr-9",
            )
        ],
    )
    models.add_signup(session, **values)
    return values


def copies(event_id: uuid.UUID, locale: str = "de") -> list[Envelope[Any]]:
    """A signup's event as v2 then v1, one event id."""
    fields: dict[str, Any] = {
        "user_id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "email": "grace@example.com",
        "full_name": "Grace Hopper",
        "phone": None,
        "plan": "pro",
        "signed_up_at": NOW,
        "locale": locale,
    }
    return [
        Envelope.wrap(
            cls.model_validate(fields), producer="accounts", correlation_id="c", event_id=event_id
        )
        for cls in (UserSignedUpV2, UserSignedUp)
    ]


def test_add_signup_writes_the_user_the_subscription_and_the_outbox_row(
    session: Session,
) -> None:
    values = add(session, phone=None)
    session.expunge_all()
    user = session.get(User, values["user_id"])
    assert user is not None
    assert (user.email, user.full_name, user.phone, user.created_at) == (
        "ada@example.com",
        "Ada Lovelace",
        None,
        NOW,
    )
    subscription = user.subscription
    assert (subscription.id, subscription.plan, subscription.status) == (
        values["subscription_id"],
        Plan.TEAM,
        SubscriptionStatus.PENDING,
    )
    assert (subscription.created_at, subscription.activated_at) == (NOW, None)
    [row] = session.scalars(select(OutboxMessage)).all()
    [event] = values["events"]
    assert (row.event_id, row.event_type, row.version, row.sent_at) == (
        event.id,
        "UserSignedUp",
        1,
        None,
    )
    assert (row.routing_key, row.producer, row.correlation_id) == (
        "accounts.user_signed_up",
        "accounts",
        "corr-9",
    )
    assert parse_envelope(row.payload) == event


def test_add_signup_writes_one_row_per_copy_in_order_with_one_event_id(
    session: Session,
) -> None:
    event_id = uuid.uuid4()
    events = copies(event_id)
    add(session, events=events, locale="de")
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.position)).all()
    assert [(row.event_id, row.version) for row in rows] == [(event_id, 2), (event_id, 1)]
    assert [parse_envelope(row.payload) for row in rows] == events
    assert [row.routing_key for row in rows] == [  # each copy on its version's key
        "accounts.user_signed_up.v2",
        "accounts.user_signed_up",
    ]
    [locale] = session.scalars(select(User.locale)).all()
    assert locale == "de"


def test_the_outbox_refuses_a_second_copy_of_one_version(session: Session) -> None:
    event_id = uuid.uuid4()
    v2 = copies(event_id)[0]
    with pytest.raises(IntegrityError) as refused, session.begin_nested():
        add(session, events=[v2, v2])
    assert models.violated_constraint(refused.value) == models.OUTBOX_COPY_UNIQUE
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_add_signup_takes_the_copies_of_one_event_only(session: Session) -> None:
    with pytest.raises(ValueError, match="one event"):
        add(session, events=copies(uuid.uuid4())[:1] + copies(uuid.uuid4())[1:])
    with pytest.raises(ValueError, match="one event"):
        add(session, events=[])
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_an_email_taken_in_any_letter_case_is_refused_and_nothing_is_written(
    session: Session,
) -> None:
    add(session, "ada@example.com")
    with pytest.raises(models.EmailTakenError), session.begin_nested():
        add(session, "ADA@Example.com")
    assert session.scalar(select(func.count()).select_from(User)) == 1
    assert session.scalar(select(func.count()).select_from(Subscription)) == 1
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_other_conflicts_are_raised_as_the_database_reported_them(session: Session) -> None:
    values = add(session, "ada@example.com")
    with pytest.raises(IntegrityError), session.begin_nested():
        add(session, "grace@example.com", subscription_id=values["subscription_id"])


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"full_name": "Ada\x00Lovelace"}, "full_name", "contains a NUL character"),
        ({"phone": "+1415\x00"}, "phone", "contains a NUL character"),
        ({"phone": "+1" + "5" * 15}, "phone", "longer than 16 characters"),
        ({"full_name": "x" * 201}, "full_name", "longer than 200 characters"),
    ],
)
def test_a_value_a_column_cannot_hold_is_named(
    session: Session, change: dict[str, str], field: str, reason: str
) -> None:
    with pytest.raises(models.UnstorableValueError) as refused, session.begin_nested():
        add(session, **change)
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_user_with_subscription_reads_both_or_none(session: Session) -> None:
    values = add(session)
    found = models.user_with_subscription(session, values["user_id"])
    assert found is not None
    user, subscription = found
    assert (user.id, user.email) == (values["user_id"], "ada@example.com")
    assert (subscription.id, subscription.status) == (
        values["subscription_id"],
        SubscriptionStatus.PENDING,
    )
    assert models.user_with_subscription(session, uuid.uuid4()) is None


def test_activate_pending_subscription_changes_it_once(session: Session) -> None:
    values = add(session)
    later = NOW + timedelta(days=1)
    assert models.activate_pending_subscription(session, values["user_id"], NOW) is True
    assert models.activate_pending_subscription(session, values["user_id"], later) is False
    subscription = session.get(Subscription, values["subscription_id"])
    assert subscription is not None
    session.refresh(subscription)
    assert (subscription.status, subscription.activated_at) == (SubscriptionStatus.ACTIVE, NOW)


def test_activate_pending_subscription_of_an_unknown_user_changes_nothing(
    session: Session,
) -> None:
    other = add(session)
    assert models.activate_pending_subscription(session, uuid.uuid4(), NOW) is False
    subscription = session.get(Subscription, other["subscription_id"])
    assert subscription is not None
    session.refresh(subscription)
    assert subscription.status is SubscriptionStatus.PENDING


def test_has_subscription(session: Session) -> None:
    values = add(session)
    assert models.has_subscription(session, values["user_id"]) is True
    assert models.has_subscription(session, uuid.uuid4()) is False
