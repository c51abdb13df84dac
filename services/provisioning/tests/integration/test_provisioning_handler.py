import functools
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from provisioning import bootstrap, consumers
from provisioning.adapters.storage import DirectorySpaceStorage
from provisioning.models import InboxMessage, OutboxMessage, Space
from provisioning.settings import ProvisioningSettings
from signup_shared.events import SpaceProvisioned, parse_envelope
from signup_shared.messaging.handlers import batch_exactly_once, exactly_once
from signup_shared.worker import _prune

pytestmark = pytest.mark.integration

[QUEUE] = bootstrap.queues(ProvisioningSettings())


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
