"""Two handlers of one user on a committing database: the first writes its rows, then fails to
make the directory; the second waits on the first's rows, then provisions the space in full."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from provisioning import actions
from provisioning.adapters.storage import MANIFEST, DirectorySpaceStorage, SpaceRequest
from provisioning.models import Space
from signup_shared.testing import migrated_database

pytestmark = pytest.mark.integration

WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


class FailingHalfway(DirectorySpaceStorage):
    """Makes the directory, waits for ``resume``, then fails before writing the manifest."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.made, self.resume = threading.Event(), threading.Event()

    def create_space(self, request: SpaceRequest) -> Path:
        self.path_of(request.user_id).mkdir(parents=True)
        self.made.set()
        assert self.resume.wait(timeout=30)
        raise OSError("disk full")


@pytest.fixture
def committing_engine(migrations_dir: Path) -> Iterator[Engine]:
    with migrated_database("provisioning", migrations_dir) as scratch:
        yield scratch


def test_a_handler_failing_at_the_directory_lets_the_next_one_provision_the_space(
    committing_engine, signup_event, tmp_path
) -> None:
    user_id = signup_event().data.user_id
    failing = FailingHalfway(tmp_path)

    def provision(storage: DirectorySpaceStorage) -> None:
        with Session(committing_engine) as session, session.begin():
            actions.provision_space(session, storage, signup_event(user_id=user_id))

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(provision, failing)
        assert failing.made.wait(timeout=30)
        second = pool.submit(provision, DirectorySpaceStorage(tmp_path))
        wait_until_a_handler_waits_on_a_lock(committing_engine)
        failing.resume.set()
        with pytest.raises(OSError, match="disk full"):
            first.result(timeout=30)
        second.result(timeout=30)

    with Session(committing_engine) as session:
        assert session.scalar(select(func.count()).select_from(Space)) == 1
        space = session.scalars(select(Space)).one()
    assert Path(space.storage_path) == tmp_path / str(user_id)
    assert (tmp_path / str(user_id) / MANIFEST).is_file()


def wait_until_a_handler_waits_on_a_lock(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        while connection.scalar(WAITING_ON_A_LOCK) == 0:
            assert time.monotonic() < deadline, "the second handler never waited for the first"
            time.sleep(0.01)
            connection.rollback()
