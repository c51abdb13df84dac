"""Storage backend of users' spaces: a directory per user holding a ``space.json`` manifest.

Creating a space is idempotent: same user, same directory (``path_of``), and a manifest already
there is kept, so creating it again after a failure finishes or repeats the same space.
"""

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

MANIFEST = "space.json"


@dataclass(frozen=True)
class SpaceRequest:
    user_id: uuid.UUID
    space_id: uuid.UUID
    plan: str
    quota_bytes: int
    created_at: datetime

    def manifest(self) -> dict[str, object]:
        return {
            "user_id": str(self.user_id),
            "space_id": str(self.space_id),
            "plan": self.plan,
            "quota_bytes": self.quota_bytes,
            "created_at": self.created_at.isoformat(),
        }


class SpaceStorage(Protocol):
    def path_of(self, user_id: uuid.UUID) -> Path:
        """Where the user's space lives (or will), without touching storage."""
        ...

    def create_space(self, request: SpaceRequest) -> Path:
        """Create the user's space, or do nothing if it exists; returns where it lives."""
        ...

    def delete_space(self, user_id: uuid.UUID) -> bool:
        """Delete the user's space and all it holds (idempotent); False if there was none."""
        ...


class DirectorySpaceStorage:
    """``<root>/<user_id>/`` with the quota recorded in ``<root>/<user_id>/space.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, user_id: uuid.UUID) -> Path:
        return self.root / str(user_id)

    def create_space(self, request: SpaceRequest) -> Path:
        directory = self.path_of(request.user_id)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / MANIFEST
        if not manifest.exists():
            _write_atomically(manifest, json.dumps(request.manifest(), indent=2) + "\n")
        return directory

    def delete_space(self, user_id: uuid.UUID) -> bool:
        directory = self.path_of(user_id)
        if not directory.exists():
            return False
        # Renamed first: a half-deleted space is never seen under the user's path.
        doomed = directory.with_name(f".deleting.{directory.name}.{uuid.uuid4().hex}")
        os.replace(directory, doomed)
        shutil.rmtree(doomed)
        return True


def _write_atomically(target: Path, content: str) -> None:
    """Readers see either no file or the whole file, never a torn one."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class FakeSpaceStorage:
    """In-memory storage for unit tests; ``failure`` makes every create raise it."""

    def __init__(self, root: Path = Path("/fake-spaces")) -> None:
        self.root = root
        self.spaces: dict[uuid.UUID, SpaceRequest] = {}
        self.requests: list[SpaceRequest] = []
        self.failure: Exception | None = None
        self.deleted: list[uuid.UUID] = []

    def create_space(self, request: SpaceRequest) -> Path:
        self.requests.append(request)
        if self.failure is not None:
            raise self.failure
        self.spaces.setdefault(request.user_id, request)
        return self.path_of(request.user_id)

    def path_of(self, user_id: uuid.UUID) -> Path:
        return self.root / str(user_id)

    def delete_space(self, user_id: uuid.UUID) -> bool:
        self.deleted.append(user_id)
        return self.spaces.pop(user_id, None) is not None
