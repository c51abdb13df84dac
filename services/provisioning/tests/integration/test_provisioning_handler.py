import functools
import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DataError, IntegrityError

from provisioning import actions, bootstrap, consumers, models
from provisioning.adapters.storage import DirectorySpaceStorage
from provisioning.models import InboxMessage, OutboxMessage, Plan, Space
from provisioning.settings import ProvisioningSettings
from signup_shared.events import SpaceProvisioned, parse_envelope
from signup_shared.messaging.handlers import batch_exactly_once, exactly_once
from signup_shared.worker import _prune

pytestmark = pytest.mark.integration

QUEUE = bootstrap.queues(ProvisioningSettings())[0]


def user_signed_up_handler(storage):
    step = functools.partial(consumers.on_user_signed_up, storage=storage)
    return exactly_once(QUEUE.name, InboxMessage, step)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_handler_provisions_once_and_records_event_and_inbox(session, signup_event, tmp_path):
    handle = user_signed_up_handler(DirectorySpaceStorage(tmp_path))
    event = signup_event(plan="pro")

    handle(session, event, persist=None)

    space = session.scalars(select(Space)).one()
    assert space.user_id == event.data.user_id
    manifest = json.loads((tmp_path / str(space.user_id) / "space.json").read_text())
    assert manifest["space_id"] == str(space.id)
    outbox = session.scalars(select(OutboxMessage)).one()
    emitted = parse_envelope(outbox.payload)
    assert emitted.data == SpaceProvisioned(
        user_id=space.user_id, space_id=space.id, quota_bytes=50 * 1024**3
    )
    assert emitted.causation_id == str(event.id)
    inbox = session.scalars(select(InboxMessage)).one()
    assert (inbox.consumer, inbox.event_id) == ("provisioning.user_signed_up", event.id)

    handle(session, event, persist=None)

    assert (count(session, Space), count(session, OutboxMessage), count(session, InboxMessage)) == (
        1,
        1,
        1,
    )


def test_same_user_republished_under_a_new_event_id_emits_nothing_new(
    session, signup_event, tmp_path
):
    handle = user_signed_up_handler(DirectorySpaceStorage(tmp_path))
    user_id = uuid.uuid4()

    handle(session, signup_event(user_id=user_id), persist=None)
    handle(session, signup_event(user_id=user_id), persist=None)

    assert (count(session, Space), count(session, OutboxMessage), count(session, InboxMessage)) == (
        1,
        1,
        2,
    )


def test_prune_inbox_forgets_only_events_older_than_the_retention(session):
    old, recent = uuid.uuid4(), uuid.uuid4()
    session.execute(
        insert(InboxMessage).values(
            consumer=QUEUE.name, event_id=old, received_at=func.now() - timedelta(days=8)
        )
    )
    session.execute(insert(InboxMessage).values(consumer=QUEUE.name, event_id=recent))

    pruned = _prune(session, InboxMessage, timedelta(days=7), persist=None)

    assert pruned == 1
    assert session.scalars(select(InboxMessage.event_id)).all() == [recent]


def test_a_batch_provisions_each_user_once_even_with_the_same_event_twice(
    session, signup_event, tmp_path
):
    step = functools.partial(consumers.on_user_signed_up, storage=DirectorySpaceStorage(tmp_path))
    handle = batch_exactly_once(QUEUE.name, InboxMessage, step)
    first, second = signup_event(), signup_event()

    assert handle(session, [first, second, first], persist=None) == [first, second]
    assert handle(session, [second], persist=None) == []

    assert (count(session, Space), count(session, OutboxMessage), count(session, InboxMessage)) == (
        2,
        2,
        2,
    )


def test_a_correlation_id_too_long_for_the_outbox_leaves_no_space_behind(
    session, signup_event, tmp_path
):
    handle = user_signed_up_handler(DirectorySpaceStorage(tmp_path))
    event = signup_event().model_copy(update={"correlation_id": "c" * 101})  # not validated

    # Refused by the contract when the outgoing event is built (before any directory), or by
    # the outbox column when it is written (then the directory is removed): nothing either way.
    with pytest.raises((ValidationError, DataError)):
        handle(session, event, persist=None)

    assert list(tmp_path.iterdir()) == []
    assert (count(session, Space), count(session, OutboxMessage), count(session, InboxMessage)) == (
        0,
        0,
        0,
    )


def test_any_database_error_after_the_directory_was_made_removes_it(
    session, signup_event, tmp_path
):
    session.execute(text("ALTER TABLE outbox ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"))
    handle = user_signed_up_handler(DirectorySpaceStorage(tmp_path))

    with pytest.raises(IntegrityError, match="refuse_all"):
        handle(session, signup_event(), persist=None)

    assert list(tmp_path.iterdir()) == []
    assert count(session, Space) == 0


def test_the_event_retried_after_a_failure_provisions_the_space(session, signup_event, tmp_path):
    handle = user_signed_up_handler(DirectorySpaceStorage(tmp_path))
    event = signup_event()
    session.execute(text("ALTER TABLE outbox ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"))
    with pytest.raises(IntegrityError):
        handle(session, event, persist=None)  # rolls the constraint back too

    handle(session, event, persist=None)

    space = session.scalars(select(Space)).one()
    manifest = json.loads((tmp_path / str(event.data.user_id) / "space.json").read_text())
    assert manifest["space_id"] == str(space.id)


def test_a_space_recorded_after_the_check_is_retryable_and_its_directory_untouched(
    session, signup_event, tmp_path, monkeypatch
):
    event = signup_event()
    storage = DirectorySpaceStorage(tmp_path)
    winner = actions.provision_space(session, storage, event)
    monkeypatch.setattr(models, "space_of", lambda *_a: None)  # as if it raced the winner

    with pytest.raises(actions.SpaceBeingProvisionedError), session.begin_nested():
        actions.provision_space(session, storage, signup_event(user_id=event.data.user_id))

    assert session.scalars(select(Space)).one().plan is Plan.FREE
    assert json.loads((tmp_path / str(winner.user_id) / "space.json").read_text())["space_id"] == (
        str(winner.id)
    )
