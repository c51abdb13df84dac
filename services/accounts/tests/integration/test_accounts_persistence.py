import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from accounts import actions, api, consumers
from accounts.actions import NewSignup
from accounts.models import (
    InboxMessage,
    OutboxMessage,
    Plan,
    Subscription,
    SubscriptionStatus,
    User,
)
from signup_shared.events import Envelope, SpaceProvisioned, parse_envelope
from signup_shared.messaging.handlers import exactly_once

pytestmark = pytest.mark.integration


def signup(email: str = "ada@example.com", phone: str | None = "+14155550123") -> NewSignup:
    return NewSignup(email=email, full_name="Ada Lovelace", plan=Plan.TEAM, phone=phone)


def test_sign_up_writes_user_subscription_and_outbox_in_one_transaction(session: Session) -> None:
    receipt = actions.sign_up(session, signup(), correlation_id="corr")
    user = session.get(User, receipt.user_id)
    assert user is not None and user.subscription.status is SubscriptionStatus.PENDING
    [row] = session.scalars(select(OutboxMessage)).all()
    assert row.sent_at is None
    assert parse_envelope(row.payload).data.user_id == receipt.user_id


def test_sign_up_stores_every_value_and_the_event_row(session: Session) -> None:
    receipt = actions.sign_up(session, signup(phone=None), correlation_id="corr-9")
    session.expunge_all()
    user = session.get(User, receipt.user_id)
    assert user is not None
    assert (user.email, user.full_name, user.phone) == ("ada@example.com", "Ada Lovelace", None)
    subscription = user.subscription
    assert (subscription.id, subscription.plan) == (receipt.subscription_id, Plan.TEAM)
    assert subscription.created_at == user.created_at
    [row] = session.scalars(select(OutboxMessage)).all()
    event = parse_envelope(row.payload)
    assert (row.event_id, row.event_type, row.version) == (event.id, "UserSignedUp", 1)
    assert (row.routing_key, row.producer, row.correlation_id) == (
        "accounts.user_signed_up",
        "accounts",
        "corr-9",
    )


def test_email_is_unique_in_any_letter_case(session: Session) -> None:
    actions.sign_up(session, signup("ada@example.com"), correlation_id="c")
    with pytest.raises(actions.EmailAlreadyRegisteredError):
        actions.sign_up(session, signup("ADA@example.com"), correlation_id="c")


def test_get_user_reads_user_and_subscription(session: Session) -> None:
    receipt = actions.sign_up(session, signup(phone=None), correlation_id="c")
    profile = actions.get_user(session, receipt.user_id)
    assert (profile.email, profile.phone, profile.plan, profile.status) == (
        "ada@example.com",
        None,
        Plan.TEAM,
        SubscriptionStatus.PENDING,
    )
    with pytest.raises(actions.UserNotFoundError):
        actions.get_user(session, uuid.uuid4())


def test_space_provisioned_activates_once_even_when_redelivered(session: Session) -> None:
    receipt = actions.sign_up(session, signup(), correlation_id="c")
    event: Envelope[Any] = Envelope.wrap(
        SpaceProvisioned(user_id=receipt.user_id, space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id="c",
    )
    handle = exactly_once(
        "accounts.space_provisioned", InboxMessage, consumers.on_space_provisioned
    )
    handle(session, event, persist=None)
    handle(session, event, persist=None)
    subscription = session.scalar(
        select(Subscription).where(Subscription.user_id == receipt.user_id)
    )
    assert subscription is not None and subscription.status is SubscriptionStatus.ACTIVE
    assert session.scalar(select(func.count()).select_from(InboxMessage)) == 1


def test_activation_records_when_and_happens_once(session: Session) -> None:
    receipt = actions.sign_up(session, signup(), correlation_id="c")
    event: Envelope[Any] = Envelope.wrap(
        SpaceProvisioned(user_id=receipt.user_id, space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id="c",
    )

    assert actions.activate_subscription(session, event) is True
    assert actions.activate_subscription(session, event) is False
    session.expire_all()
    subscription = session.get(Subscription, receipt.subscription_id)
    assert subscription is not None
    assert (subscription.status, subscription.activated_at) == (
        SubscriptionStatus.ACTIVE,
        event.occurred_at,
    )
    stranger = event.data.model_copy(update={"user_id": uuid.uuid4()})
    unknown = event.model_copy(update={"data": stranger})
    with pytest.raises(actions.UserNotFoundError):
        actions.activate_subscription(session, unknown)


def test_concurrent_signups_with_one_email_create_exactly_one_user(engine: Engine) -> None:
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(index: int) -> None:
        barrier.wait()
        with Session(engine) as session:
            try:
                api._sign_up(session, signup(email.upper() if index % 2 else email), "c")
                outcomes.append("created")
            except actions.EmailAlreadyRegisteredError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["conflict"] * 7 + ["created"]
        with Session(engine) as session:
            users = session.scalars(select(User).where(func.lower(User.email) == email)).all()
            assert len(users) == 1
            rows = session.scalars(select(OutboxMessage)).all()
            assert [parse_envelope(r.payload).data.user_id for r in rows] == [users[0].id]
    finally:
        with Session(engine) as session, session.begin():
            session.execute(delete(OutboxMessage))
            session.execute(delete(Subscription))
            session.execute(delete(User))
