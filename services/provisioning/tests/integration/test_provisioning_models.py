"""Rollback tier: the mapping and each model function of provisioning on the real PostgreSQL."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from provisioning import models
from provisioning.models import OutboxMessage, Plan, Space, SpaceStatus
from signup_shared.events import SpaceProvisioned, parse_envelope

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


def provisioned(space: Space, signup_event, **overrides: object):
    event = signup_event(user_id=space.user_id, **overrides)
    data = SpaceProvisioned(user_id=space.user_id, space_id=space.id, quota_bytes=space.quota_bytes)
    return event.caused(data, producer="provisioning")


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


# models.space_of ----------------------------------------------------------------------------
def test_space_of_a_user_without_a_space_is_none(session):
    assert models.space_of(session, uuid.uuid4()) is None


def test_space_of_returns_the_users_space(session):
    space = space_for(uuid.uuid4())
    session.add_all([space, space_for(uuid.uuid4())])
    session.flush()
    session.expunge_all()

    found = models.space_of(session, space.user_id)

    assert found is not None
    assert (found.id, found.plan, found.storage_path) == (space.id, Plan.TEAM, space.storage_path)


# models.add_space ----------------------------------------------------------------------------
def test_add_space_writes_the_space_and_its_event_together(session, signup_event):
    space = space_for(uuid.uuid4(), plan=Plan.PRO, quota_bytes=50 * 1024**3)
    event = provisioned(space, signup_event, correlation_id="corr-7")

    models.add_space(session, space, event)
    session.expunge_all()

    stored = session.scalars(select(Space).where(Space.user_id == space.user_id)).one()
    assert (stored.id, stored.plan, stored.status) == (space.id, Plan.PRO, SpaceStatus.READY)
    assert (stored.quota_bytes, stored.storage_path) == (50 * 1024**3, space.storage_path)
    assert (stored.created_at, stored.updated_at) == (NOW, NOW)
    [row] = session.scalars(select(OutboxMessage)).all()
    assert (row.event_id, row.routing_key, row.producer, row.version) == (
        event.id,
        "provisioning.space_provisioned",
        "provisioning",
        1,
    )
    assert row.correlation_id == "corr-7"
    assert parse_envelope(row.payload) == event


def test_add_space_of_a_user_with_a_space_raises_space_taken_and_writes_nothing(
    session, signup_event
):
    first = space_for(uuid.uuid4())
    session.add(first)
    session.flush()
    second = space_for(first.user_id)

    with pytest.raises(models.SpaceTakenError), session.begin_nested():
        models.add_space(session, second, provisioned(second, signup_event))

    assert session.scalars(select(OutboxMessage)).all() == []


def test_add_space_leaves_other_database_errors_as_they_are(session, signup_event):
    space = space_for(uuid.uuid4())
    event = provisioned(space, signup_event).model_copy(update={"correlation_id": "c" * 101})

    with pytest.raises(DataError), session.begin_nested():
        models.add_space(session, space, event)

    assert session.scalars(select(Space)).all() == []


def test_add_space_under_an_id_already_recorded_raises_space_taken(session, signup_event):
    first = space_for(uuid.uuid4())
    session.add(first)
    session.flush()
    same_id = space_for(uuid.uuid4(), id=first.id)

    with pytest.raises(models.SpaceTakenError), session.begin_nested():
        models.add_space(session, same_id, provisioned(same_id, signup_event))
