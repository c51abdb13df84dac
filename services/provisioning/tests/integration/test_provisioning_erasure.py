"""Erasure in provisioning against the real PostgreSQL and a real spaces directory."""

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from provisioning import actions
from provisioning.adapters.storage import DirectorySpaceStorage
from provisioning.models import ErasedUser, OutboxMessage, Space
from signup_contracts import UserErasureRequested
from signup_shared.events import Envelope

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def request(user_id: uuid.UUID) -> Envelope[UserErasureRequested]:
    return Envelope.wrap(
        UserErasureRequested(user_id=user_id, requested_at=NOW),
        producer="accounts",
        correlation_id="corr-e",
    )


def test_erasure_deletes_the_space_and_a_late_signup_gets_none(
    session: Session, signup_event, tmp_path: Path
) -> None:
    storage = DirectorySpaceStorage(tmp_path)
    event, other = signup_event(), signup_event()
    actions.provision_space(session, storage, event)
    actions.provision_space(session, storage, other)
    user_id = event.data.user_id
    (storage.path_of(user_id) / "notes.txt").write_text("the user's own data")
    confirmation = actions.erase_user(session, storage, request(user_id), NOW)
    assert confirmation is not None
    assert not storage.path_of(user_id).exists()
    assert storage.path_of(other.data.user_id).is_dir()
    assert [p.name for p in tmp_path.iterdir()] == [str(other.data.user_id)]
    assert session.scalar(select(Space).where(Space.user_id == user_id)) is None
    assert session.get(ErasedUser, user_id) is not None
    kinds = session.scalars(select(OutboxMessage.routing_key).order_by(OutboxMessage.position))
    assert list(kinds)[-1] == "provisioning.user_erased"
    assert actions.provision_space(session, storage, signup_event(user_id=user_id)) is None
    assert not storage.path_of(user_id).exists()
    assert actions.erase_user(session, storage, request(user_id), NOW) is None


def test_a_signup_step_waiting_on_the_erasure_provisions_nothing(
    engine: Engine, signup_event, tmp_path: Path
) -> None:
    storage = DirectorySpaceStorage(tmp_path)
    event = signup_event()
    done = threading.Event()
    results: list[object] = []

    def signup_step() -> None:
        try:
            with Session(engine) as session, session.begin():
                session.execute(text("SET LOCAL lock_timeout = '10s'"))
                results.append(actions.provision_space(session, storage, event))
        except BaseException as exc:
            results.append(exc)
        done.set()

    with Session(engine) as session, session.begin():
        actions.erase_user(session, storage, request(event.data.user_id), NOW)
        racer = threading.Thread(target=signup_step)
        racer.start()
        assert not done.wait(0.5)  # waits on the erasure's lock of the user
    racer.join(15)
    assert results == [None]
    assert not storage.path_of(event.data.user_id).exists()
    with Session(engine) as cleanup, cleanup.begin():
        cleanup.execute(
            text("DELETE FROM erased_users WHERE user_id = :u"), {"u": event.data.user_id}
        )
        cleanup.execute(text("DELETE FROM outbox WHERE routing_key = 'provisioning.user_erased'"))
