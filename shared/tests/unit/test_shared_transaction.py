"""The ``transaction`` decorator decides commit or rollback; the session is the layer below it,
so a fake that records those two calls is all these tests need."""

import pytest

from signup_shared.db import transaction


class RecordingSession:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.commits = 0
        self.rollbacks = 0

    def add(self, value: str) -> None:
        self.added.append(value)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


@transaction
def create(session: RecordingSession, value: str) -> str:
    session.add(value)
    return value


@transaction
def explode(session: RecordingSession) -> None:
    session.add("half-done")
    raise RuntimeError("boom")


def test_commits_by_default() -> None:
    session = RecordingSession()
    assert create(session, "x") == "x"
    assert (session.commits, session.rollbacks) == (1, 0)


def test_persist_false_always_rolls_back() -> None:
    session = RecordingSession()
    create(session, "x", persist=False)
    assert (session.commits, session.rollbacks) == (0, 1)


def test_persist_none_leaves_the_transaction_open() -> None:
    session = RecordingSession()
    create(session, "x", persist=None)
    assert (session.commits, session.rollbacks) == (0, 0)
    assert session.added == ["x"]


@pytest.mark.parametrize("persist", [True, False, None])
def test_exception_rolls_back_and_reraises(persist: bool | None) -> None:
    session = RecordingSession()
    with pytest.raises(RuntimeError, match="boom"):
        explode(session, persist=persist)
    assert (session.commits, session.rollbacks) == (0, 1)


def test_failed_commit_rolls_back() -> None:
    class FailingCommit(RecordingSession):
        def commit(self) -> None:
            raise ConnectionError("lost")

    session = FailingCommit()
    with pytest.raises(ConnectionError):
        create(session, "x")
    assert session.rollbacks == 1
