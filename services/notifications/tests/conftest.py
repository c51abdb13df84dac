from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import notifications
from signup_contracts.testing import user_signed_up
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.testing import migrated_database, rollback_session

MIGRATIONS = Path(notifications.__file__).parent / "migrations"
SIGNED_UP_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

SignedUpFactory = Callable[..., Envelope[UserSignedUp]]


@pytest.fixture
def signed_up() -> SignedUpFactory:
    """Builds ``UserSignedUp`` envelopes; ``phone=None`` for a user without a phone number."""

    def build(phone: str | None = "+14155550123", **data: Any) -> Envelope[UserSignedUp]:
        fields = {"plan": "pro", "signed_up_at": SIGNED_UP_AT, **data}
        return user_signed_up(phone=phone, correlation_id="corr-1", **fields)

    return build


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with migrated_database("notifications", MIGRATIONS) as engine:
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as session:
        yield session


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory whose sessions' commits only release savepoints of one outer
    transaction, rolled back at the end: glue that opens its own sessions leaves nothing."""
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield sessionmaker(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        finally:
            outer.rollback()
