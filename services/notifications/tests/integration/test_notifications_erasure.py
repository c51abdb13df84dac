"""Erasure in notifications against the real PostgreSQL: what is deleted, what is never sent,
and a signup racing the erasure (two committing sessions)."""

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session

from notifications import actions
from notifications.actions import Outcome, Senders
from notifications.erasure_models import ErasedUser, OutboxMessage
from notifications.models import Notification, WelcomedUser
from notifications.testing import FakeEmailSender, FakeSmsSender
from signup_contracts import UserErasureRequested
from signup_shared.events import Envelope, UserSignedUp, parse_envelope

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]


def request(user_id: uuid.UUID) -> Envelope[UserErasureRequested]:
    return Envelope.wrap(
        UserErasureRequested(user_id=user_id, requested_at=NOW),
        producer="accounts",
        correlation_id="corr-e",
    )


def rows_of(session: Session, user_id: uuid.UUID) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.user_id == user_id)))


def test_erasure_deletes_the_users_notifications_and_confirms(
    session: Session, signed_up: SignedUp
) -> None:
    mine, other = signed_up(), signed_up(email="grace@example.com")
    actions.owe_welcome(session, [mine, other], NOW)
    confirmation = actions.erase_user(session, request(mine.data.user_id), NOW)
    assert confirmation is not None
    assert rows_of(session, mine.data.user_id) == []
    assert len(rows_of(session, other.data.user_id)) == 2
    [row] = session.scalars(select(OutboxMessage)).all()
    assert (row.routing_key, row.event_id) == ("notifications.user_erased", confirmation.id)
    assert parse_envelope(row.payload).data.user_id == mine.data.user_id
    assert session.get(ErasedUser, mine.data.user_id) is not None
    assert actions.erase_user(session, request(mine.data.user_id), NOW) is None
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_a_signup_after_the_erasure_creates_nothing(session: Session, signed_up: SignedUp) -> None:
    event = signed_up()
    actions.erase_user(session, request(event.data.user_id), NOW)
    actions.owe_welcome(session, [event], NOW)
    assert rows_of(session, event.data.user_id) == []


def test_an_owed_message_erased_before_sending_is_never_sent(
    session: Session, signed_up: SignedUp
) -> None:
    event = signed_up()
    actions.owe_welcome(session, [event], NOW)
    owed = [row.id for row in rows_of(session, event.data.user_id)]
    actions.erase_user(session, request(event.data.user_id), NOW)
    senders = Senders(FakeEmailSender(), FakeSmsSender())
    results = [actions.deliver(session, owed_id, senders, NOW) for owed_id in owed]
    assert {result.outcome for result in results} == {Outcome.SKIPPED}
    assert senders.email.sent == [] and senders.sms.sent == []  # type: ignore[attr-defined]


@pytest.fixture
def committed_users(engine: Engine) -> Iterator[list[uuid.UUID]]:
    users: list[uuid.UUID] = []
    yield users
    with Session(engine) as cleanup, cleanup.begin():
        cleanup.execute(delete(Notification).where(Notification.user_id.in_(users)))
        cleanup.execute(delete(WelcomedUser).where(WelcomedUser.user_id.in_(users)))
        cleanup.execute(delete(ErasedUser).where(ErasedUser.user_id.in_(users)))
        cleanup.execute(text("DELETE FROM outbox"))


def test_an_erasure_racing_the_signup_step_leaves_nothing(
    engine: Engine, signed_up: SignedUp, committed_users: list[uuid.UUID]
) -> None:
    """The signup step claimed the welcome first: the erasure waits for it, then deletes."""
    event = signed_up()
    committed_users.append(event.data.user_id)
    erased = threading.Event()
    errors: list[BaseException] = []

    def erasure() -> None:
        try:
            with Session(engine) as session, session.begin():
                session.execute(text("SET LOCAL lock_timeout = '10s'"))
                actions.erase_user(session, request(event.data.user_id), NOW)
            erased.set()
        except BaseException as exc:
            errors.append(exc)

    with Session(engine) as session, session.begin():
        actions.owe_welcome(session, [event], NOW)
        racer = threading.Thread(target=erasure)
        racer.start()
        assert not erased.wait(0.5)  # blocked on the uncommitted welcome claim
    racer.join(15)
    assert errors == [] and erased.is_set()
    with Session(engine) as check:
        assert rows_of(check, event.data.user_id) == []
