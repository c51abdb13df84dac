"""The accounts rules and the consumer against the real PostgreSQL (rolled back after)."""

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from accounts import actions, consumers
from accounts.actions import NewSignup
from accounts.models import (
    InboxMessage,
    OutboxMessage,
    Plan,
    Subscription,
    SubscriptionStatus,
    User,
    UserKey,
)
from signup_contracts import unseal_envelope
from signup_shared.db import transaction
from signup_shared.events import Envelope, SpaceProvisioned, parse_envelope
from signup_shared.messaging.handlers import exactly_once

pytestmark = pytest.mark.integration


def signup(email: str = "ada@example.com", phone: str | None = "+14155550123") -> NewSignup:
    return NewSignup(email=email, full_name="Ada Lovelace", plan=Plan.TEAM, phone=phone)


def space_provisioned(user_id: uuid.UUID) -> Envelope[Any]:
    return Envelope.wrap(
        SpaceProvisioned(user_id=user_id, space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id="c",
    )


def status_of(session: Session, user_id: uuid.UUID) -> Subscription:
    subscription = session.scalar(select(Subscription).where(Subscription.user_id == user_id))
    assert subscription is not None
    session.refresh(subscription)
    return subscription


def test_sign_up_then_get_user(session: Session) -> None:
    receipt = actions.sign_up(session, signup(phone=None), correlation_id="c")
    profile = actions.get_user(session, receipt.user_id)
    assert (profile.email, profile.phone, profile.plan, profile.status) == (
        "ada@example.com",
        None,
        Plan.TEAM,
        SubscriptionStatus.PENDING,
    )
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.position)).all()
    assert [(row.version, parse_envelope(row.payload).data.user_id) for row in rows] == [
        (2, receipt.user_id),  # v2 only, outside a migration window
        (3, receipt.user_id),  # and the sealed copy for the history
    ]
    assert len({row.event_id for row in rows}) == 1
    key = session.get(UserKey, receipt.user_id)
    assert key is not None and len(key.key) == 32
    sealed = parse_envelope(rows[1].payload)
    assert unseal_envelope(sealed, key.key) == parse_envelope(rows[0].payload)


def test_email_is_unique_in_any_letter_case(session: Session) -> None:
    actions.sign_up(session, signup("ada@example.com"), correlation_id="c")
    with pytest.raises(actions.EmailAlreadyRegisteredError), session.begin_nested():
        actions.sign_up(session, signup("ADA@example.com"), correlation_id="c")


def test_space_provisioned_activates_once_even_when_redelivered(session: Session) -> None:
    receipt = actions.sign_up(session, signup(), correlation_id="c")
    event = space_provisioned(receipt.user_id)
    handle = exactly_once(
        "accounts.space_provisioned", InboxMessage, consumers.on_space_provisioned
    )
    handle(session, event, persist=None)
    handle(session, event, persist=None)
    assert status_of(session, receipt.user_id).status is SubscriptionStatus.ACTIVE
    assert session.scalar(select(func.count()).select_from(InboxMessage)) == 1


def test_a_second_event_id_for_the_same_user_keeps_the_first_activation(
    session: Session,
) -> None:
    receipt = actions.sign_up(session, signup(), correlation_id="c")
    first, second = space_provisioned(receipt.user_id), space_provisioned(receipt.user_id)
    handle = exactly_once(
        "accounts.space_provisioned", InboxMessage, consumers.on_space_provisioned
    )
    handle(session, first, persist=None)
    handle(session, second, persist=None)
    subscription = status_of(session, receipt.user_id)
    assert (subscription.status, subscription.activated_at) == (
        SubscriptionStatus.ACTIVE,
        first.occurred_at,
    )
    assert session.scalar(select(func.count()).select_from(InboxMessage)) == 2


def test_space_provisioned_for_an_unknown_user_fails(session: Session) -> None:
    with pytest.raises(actions.UserNotFoundError):
        actions.activate_subscription(session, space_provisioned(uuid.uuid4()))


def test_concurrent_signups_with_one_email_create_exactly_one_user(engine: Engine) -> None:
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    outcomes: list[str] = []
    barrier = threading.Barrier(8)
    sign_up = transaction(actions.sign_up)

    def attempt(index: int) -> None:
        barrier.wait()
        with Session(engine) as session:
            try:
                sign_up(session, signup(email.upper() if index % 2 else email), correlation_id="c")
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
            assert {parse_envelope(r.payload).data.user_id for r in rows} == {users[0].id}
            assert sorted(r.version for r in rows) == [2, 3]
    finally:
        with Session(engine) as session, session.begin():
            session.execute(delete(OutboxMessage))
            session.execute(delete(Subscription))
            session.execute(delete(UserKey))
            session.execute(delete(User))
