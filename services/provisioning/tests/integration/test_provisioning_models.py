import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from provisioning import actions
from provisioning.adapters.storage import FakeSpaceStorage
from provisioning.models import OutboxMessage, Plan, Space, SpaceStatus

pytestmark = pytest.mark.integration

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def space_for(user_id: uuid.UUID, **overrides: object) -> Space:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "plan": Plan.TEAM,
        "quota_bytes": 500 * 1024**3,
        "status": SpaceStatus.READY,
        "storage_path": f"/spaces/{user_id}",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Space(**(values | overrides))


def test_space_round_trips_through_the_database(session):
    user_id = uuid.uuid4()
    session.add(space_for(user_id))
    session.flush()
    session.expunge_all()

    loaded = session.scalars(select(Space).where(Space.user_id == user_id)).one()

    assert (loaded.plan, loaded.status) == (Plan.TEAM, SpaceStatus.READY)
    assert loaded.quota_bytes == 500 * 1024**3
    assert loaded.storage_path == f"/spaces/{user_id}"
    assert loaded.created_at == loaded.updated_at == NOW


def test_a_user_has_at_most_one_space(session):
    user_id = uuid.uuid4()
    session.add(space_for(user_id))
    session.flush()
    session.add(space_for(user_id))

    with pytest.raises(IntegrityError) as raised:
        session.flush()

    assert raised.value.orig.diag.constraint_name == "uq_spaces_user_id"


def test_quota_cannot_be_negative(session):
    session.add(space_for(uuid.uuid4(), quota_bytes=-1))

    with pytest.raises(IntegrityError) as raised:
        session.flush()

    assert raised.value.orig.diag.constraint_name == "ck_spaces_quota_bytes_non_negative"


def test_provision_space_finds_the_space_a_previous_event_created(session, signup_event):
    user_id = uuid.uuid4()
    first = actions.provision_space(session, FakeSpaceStorage(), signup_event(user_id=user_id))

    again = actions.provision_space(session, FakeSpaceStorage(), signup_event(user_id=user_id))

    assert again.id == first.id
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_provision_space_writes_the_space_and_its_event_together(session, signup_event):
    event = signup_event(plan="pro")

    space = actions.provision_space(session, FakeSpaceStorage(), event, now=NOW)
    session.expunge_all()

    stored = session.scalars(select(Space).where(Space.user_id == event.data.user_id)).one()
    assert (stored.id, stored.plan, stored.status) == (space.id, Plan.PRO, SpaceStatus.READY)
    assert (stored.quota_bytes, stored.created_at, stored.updated_at) == (50 * 1024**3, NOW, NOW)
    [row] = session.scalars(select(OutboxMessage)).all()
    assert (row.routing_key, row.producer, row.version) == (
        "provisioning.space_provisioned",
        "provisioning",
        1,
    )
    assert str(space.id) in row.payload and row.correlation_id == event.correlation_id


def test_a_space_inserted_after_the_check_is_a_retryable_error(session, signup_event, monkeypatch):
    event = signup_event()
    session.add(space_for(event.data.user_id))
    session.flush()
    monkeypatch.setattr(session, "scalar", lambda *_a, **_k: None)  # a concurrent handler won

    with pytest.raises(actions.SpaceBeingProvisionedError):
        actions.provision_space(session, FakeSpaceStorage(), event)
