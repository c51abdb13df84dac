import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DataError

from provisioning import actions, models
from provisioning.adapters.storage import FakeSpaceStorage
from provisioning.models import Plan, Space, SpaceStatus
from signup_contracts import UserErasureRequested
from signup_shared.errors import TransientError
from signup_shared.events import Envelope, SpaceProvisioned

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
GIB = 1024**3
SESSION: Any = object()  # the action only hands the session on to the models


@dataclass
class FakeSpaces:
    """The models' port: the spaces already recorded, what was added, and an insert failure;
    ``storage`` (when set) shows what storage held when the rows were written."""

    existing: dict[uuid.UUID, Space] = field(default_factory=dict)
    added: list[tuple[Space, Any]] = field(default_factory=list)
    failure: BaseException | None = None
    storage: FakeSpaceStorage | None = None
    storage_when_added: list[dict[uuid.UUID, Any]] = field(default_factory=list)
    erased: set[uuid.UUID] = field(default_factory=set)
    locked: list[uuid.UUID] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def lock_user(self, session: Any, user_id: uuid.UUID) -> None:
        assert session is SESSION
        self.locked.append(user_id)

    def is_erased(self, session: Any, user_id: uuid.UUID) -> bool:
        return user_id in self.erased

    def erase_user(
        self, session: Any, user_id: uuid.UUID, event_id: uuid.UUID, now: datetime
    ) -> tuple[bool, bool]:
        assert self.locked[-1] == user_id, "erased without the user's lock"
        new = user_id not in self.erased
        self.erased.add(user_id)
        return new, self.existing.pop(user_id, None) is not None

    def add_event(self, session: Any, event: Any) -> None:
        self.events.append(event)

    def space_of(self, session: Any, user_id: uuid.UUID) -> Space | None:
        assert session is SESSION
        return self.existing.get(user_id)

    def add_space(self, session: Any, space: Space, event: Any) -> None:
        assert session is SESSION
        if self.storage is not None:
            self.storage_when_added.append(dict(self.storage.spaces))
        if self.failure is not None:
            raise self.failure
        self.added.append((space, event))


@pytest.fixture
def spaces(monkeypatch: pytest.MonkeyPatch) -> FakeSpaces:
    fake = FakeSpaces()
    monkeypatch.setattr(models, "space_of", fake.space_of)
    monkeypatch.setattr(models, "add_space", fake.add_space)
    for name in ("lock_user", "is_erased", "erase_user", "add_event"):
        monkeypatch.setattr(models, name, getattr(fake, name))
    return fake


@pytest.fixture
def storage() -> FakeSpaceStorage:
    return FakeSpaceStorage(root=Path("/spaces"))


def test_creates_a_ready_space_in_storage_and_records_it(spaces, storage, signup_event):
    event = signup_event(plan="pro")

    space = actions.provision_space(SESSION, storage, event, now=NOW)

    [(added, _)] = spaces.added
    assert added is space
    assert (space.id, space.user_id) == (
        actions.space_id_for(event.data.user_id),
        event.data.user_id,
    )
    assert (space.plan, space.status, space.quota_bytes) == (Plan.PRO, SpaceStatus.READY, 50 * GIB)
    assert space.storage_path == f"/spaces/{event.data.user_id}"
    assert space.created_at == space.updated_at == NOW
    assert list(storage.spaces) == [event.data.user_id]


def test_the_rows_are_written_before_the_directory_is_made(spaces, storage, signup_event):
    spaces.storage = storage

    actions.provision_space(SESSION, storage, signup_event())

    assert spaces.storage_when_added == [{}]
    assert len(storage.spaces) == 1


def test_asks_storage_for_the_space_with_its_id_plan_and_quota(spaces, storage, signup_event):
    event = signup_event(plan="team")

    space = actions.provision_space(SESSION, storage, event, now=NOW)

    [request] = storage.requests
    assert (request.user_id, request.space_id) == (event.data.user_id, space.id)
    assert (request.plan, request.quota_bytes, request.created_at) == ("team", 500 * GIB, NOW)


@pytest.mark.parametrize(
    ("plan", "quota_bytes"), [("free", 1 * GIB), ("pro", 50 * GIB), ("team", 500 * GIB)]
)
def test_quota_follows_the_plan(spaces, storage, signup_event, plan, quota_bytes):
    space = actions.provision_space(SESSION, storage, signup_event(plan=plan))

    assert space.quota_bytes == quota_bytes


def test_records_space_provisioned_caused_by_the_signup(spaces, storage, signup_event):
    event = signup_event(plan="pro", correlation_id="corr-42")

    space = actions.provision_space(SESSION, storage, event, now=NOW)

    [(_, emitted)] = spaces.added
    assert emitted.data == SpaceProvisioned(
        user_id=event.data.user_id, space_id=space.id, quota_bytes=50 * GIB
    )
    assert (emitted.causation_id, emitted.correlation_id) == (str(event.id), "corr-42")
    assert (emitted.producer, emitted.routing_key) == (
        "provisioning",
        "provisioning.space_provisioned",
    )
    assert emitted.id != event.id


def test_a_user_with_a_space_gets_it_back_without_a_new_event_or_storage_call(
    spaces, storage, signup_event
):
    event = signup_event()
    existing = Space(id=uuid.uuid4(), user_id=event.data.user_id, plan=Plan.FREE)
    spaces.existing[event.data.user_id] = existing

    space = actions.provision_space(SESSION, storage, event)

    assert space is existing
    assert (spaces.added, storage.requests) == ([], [])


def test_space_id_is_the_same_for_every_event_of_one_user(spaces, storage, signup_event):
    user_id = uuid.uuid4()

    first = actions.provision_space(SESSION, storage, signup_event(user_id=user_id))
    again = actions.provision_space(SESSION, FakeSpaceStorage(), signup_event(user_id=user_id))
    other = actions.provision_space(SESSION, storage, signup_event())

    assert first.id == again.id != other.id


def test_a_space_recorded_by_a_concurrent_handler_is_a_retryable_error_and_no_directory(
    spaces, storage, signup_event
):
    spaces.failure = models.SpaceTakenError(uuid.uuid4())

    with pytest.raises(actions.SpaceBeingProvisionedError) as raised:
        actions.provision_space(SESSION, storage, signup_event())

    assert isinstance(raised.value, TransientError)
    assert storage.requests == []


@pytest.mark.parametrize(
    "failure",
    [
        DataError("INSERT INTO outbox ...", {}, Exception("value too long")),
        RuntimeError("connection lost"),
    ],
)
def test_rows_the_database_refuses_leave_no_directory(spaces, storage, signup_event, failure):
    spaces.failure = failure

    with pytest.raises(type(failure)) as raised:
        actions.provision_space(SESSION, storage, signup_event())

    assert raised.value is failure
    assert storage.requests == []


def test_a_storage_failure_is_raised_so_the_caller_rolls_the_rows_back(
    spaces, storage, signup_event
):
    storage.failure = OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        actions.provision_space(SESSION, storage, signup_event())

    assert len(storage.requests) == 1


def test_a_retry_after_a_storage_failure_asks_for_the_same_space(spaces, storage, signup_event):
    event = signup_event()
    storage.failure = OSError("disk full")
    with pytest.raises(OSError):
        actions.provision_space(SESSION, storage, event)
    spaces.added.clear()  # the caller rolled the rows back
    storage.failure = None

    actions.provision_space(SESSION, storage, event)

    first, retried = storage.requests
    assert (first.space_id, first.plan, first.quota_bytes) == (
        retried.space_id,
        retried.plan,
        retried.quota_bytes,
    )


def erasure_request(user_id: uuid.UUID) -> Any:
    return Envelope.wrap(
        UserErasureRequested(user_id=user_id, requested_at=NOW),
        producer="accounts",
        correlation_id="corr-e",
    )


def test_erasure_deletes_the_space_and_confirms_once(spaces, storage, signup_event):
    event = signup_event(plan="pro")
    space = actions.provision_space(SESSION, storage, event, now=NOW)
    assert space is not None
    spaces.existing[space.user_id] = space
    request = erasure_request(space.user_id)
    confirmation = actions.erase_user(SESSION, storage, request, now=NOW)
    assert confirmation is not None
    assert (confirmation.producer, confirmation.data.holder) == ("provisioning", "provisioning")
    assert confirmation.routing_key == "provisioning.user_erased"
    assert confirmation.causation_id == str(request.id)
    assert spaces.events == [confirmation]
    assert storage.spaces == {} and storage.deleted == [space.user_id]
    assert space.user_id not in spaces.existing
    assert actions.erase_user(SESSION, storage, request, now=NOW) is None
    assert len(spaces.events) == 1


def test_a_signup_after_the_erasure_gets_no_space(spaces, storage, signup_event):
    event = signup_event()
    actions.erase_user(SESSION, storage, erasure_request(event.data.user_id), now=NOW)
    assert actions.provision_space(SESSION, storage, event, now=NOW) is None
    assert storage.requests == [] and spaces.added == []
    assert spaces.locked == [event.data.user_id, event.data.user_id]
