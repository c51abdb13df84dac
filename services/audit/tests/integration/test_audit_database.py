"""Rollback tier: audit's models and handlers against the real PostgreSQL."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from audit import consumers, models
from audit.models import Base, InboxMessage
from signup_shared.messaging.handlers import batch_exactly_once, exactly_once

pytestmark = pytest.mark.integration
QUEUE = "audit.user_signed_up"


def row(event) -> dict[str, object]:
    return {
        "user_id": event.data.user_id,
        "first_event_id": event.id,
        "plan": event.data.plan,
        "signed_up_at": event.data.signed_up_at,
    }


def test_migration_creates_exactly_the_mapped_schema(engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_add_users_inserts_each_new_user_once_and_counts_the_new(db, signup_event) -> None:
    user = uuid.uuid4()
    first, again, other = signup_event(user), signup_event(user), signup_event()

    assert models.add_users(db, [row(first), row(other)]) == 2
    assert models.add_users(db, [row(again)]) == 0

    assert models.count_users(db) == 2
    stored = models.find_user(db, user)
    assert stored is not None and stored.first_event_id == first.id


def test_add_users_keeps_a_users_first_row_when_named_twice_in_one_call(db, signup_event) -> None:
    user = uuid.uuid4()
    first, again = signup_event(user), signup_event(user)

    assert models.add_users(db, [row(first), row(again)]) == 1

    stored = models.find_user(db, user)
    assert stored is not None
    assert (stored.first_event_id, stored.plan) == (first.id, first.data.plan)
    assert stored.signed_up_at == first.data.signed_up_at


def test_add_users_of_nothing_is_nothing(db) -> None:
    assert models.add_users(db, []) == 0


def test_the_handler_records_an_event_once_however_often_it_comes(db, signup_event) -> None:
    handle = exactly_once(QUEUE, InboxMessage, consumers.on_user_signed_up)
    event = signup_event(version=2)

    handle(db, event, persist=None)
    handle(db, event, persist=None)

    assert models.count_users(db) == 1


def test_the_batch_handler_absorbs_the_v1_and_v2_copies_of_one_signup(db, signup_event) -> None:
    handle = batch_exactly_once(
        QUEUE, InboxMessage, consumers.on_user_signed_up, consumers.on_users_signed_up
    )
    v1 = signup_event()
    v2 = v1.model_copy(update={"version": 2})  # the same event id, as accounts publishes them
    others = [signup_event() for _ in range(3)]

    new = handle(db, [v1, v2, *others], persist=None)

    assert [e.id for e in new] == [v1.id, *(e.id for e in others)]
    assert models.count_users(db) == 4
