import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError

from provisioning import actions
from provisioning.adapters.storage import FakeSpaceStorage
from provisioning.models import Plan, Space, SpaceStatus
from signup_shared.errors import TransientError
from signup_shared.events import SpaceProvisioned, parse_envelope
from signup_shared.testing import FakeSession

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
GIB = 1024**3


class InsertFailingSession(FakeSession):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if statement is actions.INSERT_SPACE_AND_EVENT:
            raise self.error
        return super().execute(statement, *args, **kwargs)


def written(session: FakeSession) -> dict[str, object]:
    """The parameters of the one statement that wrote the space and its outbox row."""
    [parameters] = [
        p
        for s, p in zip(session.executed, session.parameters, strict=True)
        if s is actions.INSERT_SPACE_AND_EVENT
    ]
    return dict(parameters)


def unique_violation(constraint: str) -> IntegrityError:
    orig = SimpleNamespace(diag=SimpleNamespace(constraint_name=constraint))
    return IntegrityError("INSERT INTO spaces ...", {}, orig)  # type: ignore[arg-type]


def test_creates_a_ready_space_in_storage_and_records_its_path(signup_event):
    session, storage = FakeSession(), FakeSpaceStorage(root=Path("/spaces"))
    event = signup_event(plan="pro")

    space = actions.provision_space(session, storage, event, now=NOW)

    row = written(session)
    assert (row["space_id"], row["user_id"], row["plan"], row["status"]) == (
        space.id,
        event.data.user_id,
        "pro",
        "ready",
    )
    assert (row["quota_bytes"], row["storage_path"], row["now"]) == (
        50 * GIB,
        f"/spaces/{event.data.user_id}",
        NOW,
    )
    assert session.added == []
    assert space.user_id == event.data.user_id
    assert space.plan is Plan.PRO
    assert space.status is SpaceStatus.READY
    assert space.storage_path == f"/spaces/{event.data.user_id}"
    assert space.created_at == space.updated_at == NOW
    assert session.executed == [actions.INSERT_SPACE_AND_EVENT]
    assert session.commits == 0


def test_asks_storage_for_the_space_with_its_id_plan_and_quota(signup_event):
    session, storage = FakeSession(), FakeSpaceStorage()
    event = signup_event(plan="team")

    space = actions.provision_space(session, storage, event, now=NOW)

    [request] = storage.requests
    assert (request.user_id, request.space_id) == (event.data.user_id, space.id)
    assert (request.plan, request.quota_bytes, request.created_at) == ("team", 500 * GIB, NOW)


@pytest.mark.parametrize(
    ("plan", "quota_bytes"), [("free", 1 * GIB), ("pro", 50 * GIB), ("team", 500 * GIB)]
)
def test_quota_follows_the_plan(signup_event, plan, quota_bytes):
    space = actions.provision_space(FakeSession(), FakeSpaceStorage(), signup_event(plan=plan))

    assert space.quota_bytes == quota_bytes


def test_emits_space_provisioned_caused_by_the_signup(signup_event):
    session = FakeSession()
    event = signup_event(plan="pro", correlation_id="corr-42")

    space = actions.provision_space(session, FakeSpaceStorage(), event, now=NOW)

    row = SimpleNamespace(**written(session))
    emitted = parse_envelope(row.payload)
    assert emitted.data == SpaceProvisioned(
        user_id=event.data.user_id, space_id=space.id, quota_bytes=50 * GIB
    )
    assert emitted.causation_id == str(event.id)
    assert emitted.correlation_id == row.correlation_id == "corr-42"
    assert emitted.producer == "provisioning"
    assert row.routing_key == "provisioning.space_provisioned"
    assert row.event_id == emitted.id != event.id


def test_existing_space_is_returned_without_a_new_event_or_storage_call(signup_event):
    event = signup_event()
    existing = Space(
        id=uuid.uuid4(),
        user_id=event.data.user_id,
        plan=Plan.FREE,
        quota_bytes=GIB,
        status=SpaceStatus.READY,
        storage_path="/spaces/x",
    )
    session, storage = FakeSession(), FakeSpaceStorage()
    session.scalar_results.append(existing)

    space = actions.provision_space(session, storage, event)

    assert space is existing
    assert session.executed == []  # the select went through ``scalar``
    assert storage.requests == []


def test_space_id_is_the_same_for_every_event_of_one_user(signup_event):
    def provision(event):
        return actions.provision_space(FakeSession(), FakeSpaceStorage(), event)

    user_id = uuid.uuid4()
    first = provision(signup_event(user_id=user_id))
    again = provision(signup_event(user_id=user_id))
    other = provision(signup_event())

    assert first.id == again.id != other.id


def test_concurrent_insert_of_the_same_user_becomes_a_retryable_error(signup_event):
    session = InsertFailingSession(unique_violation("uq_spaces_user_id"))

    with pytest.raises(actions.SpaceBeingProvisionedError) as raised:
        actions.provision_space(session, FakeSpaceStorage(), signup_event())

    assert isinstance(raised.value, TransientError)


def test_other_integrity_errors_are_not_disguised(signup_event):
    session = InsertFailingSession(unique_violation("ck_spaces_quota_bytes_non_negative"))

    with pytest.raises(IntegrityError):
        actions.provision_space(session, FakeSpaceStorage(), signup_event())


def test_storage_failure_adds_nothing(signup_event):
    session, storage = FakeSession(), FakeSpaceStorage()
    storage.failure = OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        actions.provision_space(session, storage, signup_event())

    assert actions.INSERT_SPACE_AND_EVENT not in session.executed
