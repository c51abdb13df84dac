import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import DeclarativeBase, Session

from signup_shared import inbox
from signup_shared.testing import rollback_session, scratch_database

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Inbox(inbox.InboxMixin, Base):
    pass


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with scratch_database("inbox") as engine:
        Base.metadata.create_all(engine)
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as session:
        yield session


def test_claim_many_returns_only_the_new_ids_and_records_each_once(session: Session) -> None:
    old, new_a, new_b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert inbox.claim_many(session, Inbox, "q", [old]) == {old}

    assert inbox.claim_many(session, Inbox, "q", [new_b, old, new_a, new_a]) == {new_a, new_b}
    assert session.scalar(select(func.count()).select_from(Inbox)) == 3


def test_claims_are_per_consumer(session: Session) -> None:
    event = uuid.uuid4()
    assert inbox.claim(session, Inbox, "one", event) is True
    assert inbox.claim(session, Inbox, "one", event) is False
    assert inbox.claim(session, Inbox, "two", event) is True


def test_claim_many_of_nothing_runs_no_statement(session: Session) -> None:
    assert inbox.claim_many(session, Inbox, "q", []) == set()


def test_claim_statement_is_built_once_per_inbox_table(session: Session) -> None:
    inbox.claim_many(session, Inbox, "q", [uuid.uuid4()])
    statement = inbox._CLAIM_STATEMENTS[Inbox]
    inbox.claim_many(session, Inbox, "q", [uuid.uuid4() for _ in range(50)])
    assert inbox._CLAIM_STATEMENTS[Inbox] is statement


def test_a_single_claim_uses_its_own_statement_built_once(session: Session) -> None:
    event = uuid.uuid4()
    assert inbox.claim(session, Inbox, "single", event) is True
    statement = inbox._CLAIM_ONE_STATEMENTS[Inbox]
    assert inbox.claim(session, Inbox, "single", event) is False
    assert inbox._CLAIM_ONE_STATEMENTS[Inbox] is statement
    assert inbox.claim_many(session, Inbox, "single", [event]) == set()  # the two agree
