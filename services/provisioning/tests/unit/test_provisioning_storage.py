import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioning.adapters import storage as storage_module
from provisioning.adapters.storage import DirectorySpaceStorage, FakeSpaceStorage, SpaceRequest

CREATED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def request_for(user_id: uuid.UUID, plan: str = "pro", quota_bytes: int = 50) -> SpaceRequest:
    return SpaceRequest(
        user_id=user_id,
        space_id=uuid.uuid4(),
        plan=plan,
        quota_bytes=quota_bytes,
        created_at=CREATED_AT,
    )


def test_creates_the_user_directory_with_its_manifest(tmp_path):
    request = request_for(uuid.uuid4())

    path = DirectorySpaceStorage(tmp_path).create_space(request)

    assert path == tmp_path / str(request.user_id)
    assert path.is_dir()
    assert json.loads((path / "space.json").read_text()) == {
        "user_id": str(request.user_id),
        "space_id": str(request.space_id),
        "plan": "pro",
        "quota_bytes": 50,
        "created_at": "2024-05-01T12:00:00+00:00",
    }


def test_creating_an_existing_space_keeps_what_was_recorded(tmp_path):
    user_id = uuid.uuid4()
    storage = DirectorySpaceStorage(tmp_path)
    first = request_for(user_id)
    storage.create_space(first)

    path = storage.create_space(request_for(user_id, plan="team", quota_bytes=500))

    assert path == tmp_path / str(user_id)
    recorded = json.loads((path / "space.json").read_text())
    assert (recorded["space_id"], recorded["plan"]) == (str(first.space_id), "pro")
    assert sorted(p.name for p in path.iterdir()) == ["space.json"]


def test_a_failed_write_leaves_no_manifest_and_no_temporary_file(tmp_path, monkeypatch):
    def fail_replace(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage_module.os, "replace", fail_replace)
    request = request_for(uuid.uuid4())

    with pytest.raises(OSError, match="disk full"):
        DirectorySpaceStorage(tmp_path).create_space(request)

    assert list((tmp_path / str(request.user_id)).iterdir()) == []


def test_manifest_is_moved_into_place_from_a_temporary_file(tmp_path, monkeypatch):
    replaced: list[tuple[str, str]] = []
    real_replace = storage_module.os.replace

    def spy_replace(source: str, target: str) -> None:
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(storage_module.os, "replace", spy_replace)
    path = DirectorySpaceStorage(tmp_path).create_space(request_for(uuid.uuid4()))

    [(source, target)] = replaced
    assert target == str(path / "space.json")
    assert source != target and source.startswith(str(path))


def test_a_relative_root_is_resolved_when_the_storage_is_built(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    storage = DirectorySpaceStorage(Path("var/spaces"))

    assert storage.root == tmp_path.resolve() / "var" / "spaces"


def test_fake_storage_is_idempotent_per_user():
    fake, user_id = FakeSpaceStorage(), uuid.uuid4()
    first = request_for(user_id)

    assert fake.create_space(first) == fake.create_space(request_for(user_id))
    assert fake.spaces == {user_id: first}


def test_path_of_is_where_create_space_puts_the_space(tmp_path):
    storage, request = DirectorySpaceStorage(tmp_path), request_for(uuid.uuid4())

    assert storage.path_of(request.user_id) == tmp_path / str(request.user_id)
    assert not storage.path_of(request.user_id).exists()
    assert storage.create_space(request) == storage.path_of(request.user_id)


def test_creating_a_half_made_space_again_finishes_it(tmp_path):
    storage, request = DirectorySpaceStorage(tmp_path), request_for(uuid.uuid4())
    storage.path_of(request.user_id).mkdir()

    path = storage.create_space(request)

    assert json.loads((path / "space.json").read_text())["space_id"] == str(request.space_id)
