import pytest

from signup_shared.db import transaction
from signup_shared.testing import FakeSession


@transaction
def create(session: FakeSession, value: str) -> str:
    session.add(value)
    return value


@transaction
def explode(session: FakeSession) -> None:
    session.add("half-done")
    raise RuntimeError("boom")


def test_commits_by_default() -> None:
    session = FakeSession()
    assert create(session, "x") == "x"
    assert (session.commits, session.rollbacks) == (1, 0)


def test_persist_false_always_rolls_back() -> None:
    session = FakeSession()
    create(session, "x", persist=False)
    assert (session.commits, session.rollbacks) == (0, 1)


def test_persist_none_leaves_the_transaction_open() -> None:
    session = FakeSession()
    create(session, "x", persist=None)
    assert (session.commits, session.rollbacks) == (0, 0)
    assert session.added == ["x"]


@pytest.mark.parametrize("persist", [True, False, None])
def test_exception_rolls_back_and_reraises(persist: bool | None) -> None:
    session = FakeSession()
    with pytest.raises(RuntimeError, match="boom"):
        explode(session, persist=persist)
    assert (session.commits, session.rollbacks) == (0, 1)


def test_failed_commit_rolls_back() -> None:
    class FailingCommit(FakeSession):
        def commit(self) -> None:
            raise ConnectionError("lost")

    session = FailingCommit()
    with pytest.raises(ConnectionError):
        create(session, "x")
    assert session.rollbacks == 1
