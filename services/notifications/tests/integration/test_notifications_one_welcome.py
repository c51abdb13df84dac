"""One welcome per user, decided by the first ``UserSignedUp`` for the user (rollback tier, and
two committing sessions for the concurrent case)."""

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session

import notifications
from notifications import actions, models
from notifications.models import Notification, WelcomedUser
from signup_shared import migrations
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.testing import scratch_database

pytestmark = pytest.mark.integration

MIGRATIONS = Path(notifications.__file__).parent / "migrations"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SignedUp = Callable[..., Envelope[UserSignedUp]]


def owed_to(session: Session, user_id: uuid.UUID) -> list[tuple[str, str, uuid.UUID]]:
    rows = session.scalars(select(Notification).where(Notification.user_id == user_id))
    return sorted((r.channel.value, r.recipient, r.causing_event_id) for r in rows)


def pair(signed_up: SignedUp) -> tuple[Envelope[UserSignedUp], Envelope[UserSignedUp]]:
    """A first signup without a phone, and a second event for the same user with one."""
    first = signed_up(phone=None)
    second = signed_up(user_id=first.data.user_id, email="second@example.com")
    assert second.id != first.id and second.data.phone is not None
    return first, second


def test_the_first_event_of_a_batch_decides_and_the_second_owes_nothing(
    session: Session, signed_up: SignedUp
) -> None:
    first, second = pair(signed_up)
    other = signed_up()
    actions.owe_welcome(session, [first, other, second], NOW)
    assert owed_to(session, first.data.user_id) == [("email", "ada@example.com", first.id)]
    assert [c for c, _, _ in owed_to(session, other.data.user_id)] == ["email", "sms"]
    assert models.pending_of_events(session, [second.id]) == []


def test_a_later_batch_owes_nothing_to_a_user_welcomed_before(
    session: Session, signed_up: SignedUp
) -> None:
    first, second = pair(signed_up)
    actions.owe_welcome(session, [first], NOW)
    actions.owe_welcome(session, [second], NOW)
    actions.owe_welcome(session, [first], NOW)  # the first event again (inbox pruned)
    assert owed_to(session, first.data.user_id) == [("email", "ada@example.com", first.id)]
    claim = session.get(WelcomedUser, first.data.user_id)
    assert claim is not None and (claim.event_id, claim.welcomed_at) == (first.id, NOW)


def test_claim_welcomes_returns_only_the_users_it_claims(session: Session) -> None:
    known, new = uuid.uuid4(), uuid.uuid4()
    assert models.claim_welcomes(session, {known: uuid.uuid4()}, NOW) == {known}
    assert models.claim_welcomes(session, {known: uuid.uuid4(), new: uuid.uuid4()}, NOW) == {new}
    assert models.claim_welcomes(session, {}, NOW) == set()


@pytest.fixture
def committed_users(engine: Engine) -> Iterator[list[uuid.UUID]]:
    """Users whose rows a test commits into the scratch database; deleted afterwards."""
    users: list[uuid.UUID] = []
    yield users
    with Session(engine) as cleanup, cleanup.begin():
        cleanup.execute(delete(Notification).where(Notification.user_id.in_(users)))
        cleanup.execute(delete(WelcomedUser).where(WelcomedUser.user_id.in_(users)))


def test_two_processes_handling_both_events_at_once_owe_one_welcome(
    engine: Engine, signed_up: SignedUp, committed_users: list[uuid.UUID]
) -> None:
    """The second transaction's claim waits on the first's key lock, then finds it taken."""
    first, second = pair(signed_up)
    committed_users.append(first.data.user_id)
    claimed_second = threading.Event()
    errors: list[BaseException] = []

    def other_process() -> None:
        try:
            with Session(engine) as session, session.begin():
                session.execute(text("SET LOCAL lock_timeout = '10s'"))
                actions.owe_welcome(session, [second], NOW)
            claimed_second.set()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with Session(engine) as session, session.begin():
        actions.owe_welcome(session, [first], NOW)
        racer = threading.Thread(target=other_process)
        racer.start()
        # The racer blocks on the uncommitted claim: it cannot finish before this commits.
        assert not claimed_second.wait(0.5)
    racer.join(15)
    assert not racer.is_alive() and errors == [] and claimed_second.is_set()
    with Session(engine) as check:
        assert owed_to(check, first.data.user_id) == [("email", "ada@example.com", first.id)]


def test_the_migration_keeps_the_first_events_welcome_and_drops_what_later_ones_owed() -> None:
    """Data stored before revision 0002: the oldest event of each user claims the welcome;
    pending rows of a later event go, a sent one stays as history."""
    user, early, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    insert = text(
        "INSERT INTO notifications (id, user_id, channel, recipient, template, template_data,"
        " status, attempts, causing_event_id, created_at, updated_at)"
        " VALUES (:id, :user, :channel, :to, :template, '{}', :status, 0, :event, :at, :at)"
    )
    stored = [
        ("email", "a@example.com", "welcome_email", "sent", early, "2026-01-01T00:00Z"),
        ("email", "b@example.com", "welcome_email", "pending", late, "2026-01-02T00:00Z"),
        ("sms", "+14155550123", "welcome_sms", "pending", late, "2026-01-02T00:00Z"),
    ]
    with scratch_database("notifications_migration") as engine:
        url = engine.url.render_as_string(hide_password=False)
        migrations.upgrade(url, MIGRATIONS, "0001")
        with engine.begin() as connection:
            for channel, to, template, status, event, at in stored:
                connection.execute(
                    insert,
                    {"id": uuid.uuid4(), "user": user, "channel": channel, "to": to}
                    | {"template": template, "status": status, "event": event, "at": at},
                )
        migrations.upgrade(url, MIGRATIONS, "0002")
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT channel, recipient FROM notifications")).all()
            claims = connection.execute(text("SELECT user_id, event_id FROM welcomed_users")).all()
        assert [tuple(r) for r in kept] == [("email", "a@example.com")]
        assert [tuple(r) for r in claims] == [(user, early)]
        migrations.downgrade(url, MIGRATIONS, "0001")
