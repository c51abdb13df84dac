"""Fixtures shared by the stats tests: event factories and databases."""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import stats
from signup_contracts.testing import space_provisioned
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.testing import migrated_database, rollback_session, user_signed_up

MIGRATIONS_DIR = Path(stats.__file__).parent / "migrations"


SignupFactory = Callable[..., Envelope[UserSignedUp]]


@pytest.fixture
def signup_event() -> SignupFactory:
    def make(
        plan: str = "pro",
        signed_up_at: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        user_id: uuid.UUID | None = None,
    ) -> Envelope[UserSignedUp]:
        return user_signed_up(plan=plan, signed_up_at=signed_up_at, user_id=user_id or uuid.uuid4())

    return make


@pytest.fixture
def provisioned_event() -> Callable[..., Envelope[SpaceProvisioned]]:
    def make(user_id: uuid.UUID | None = None) -> Envelope[SpaceProvisioned]:
        return space_provisioned(quota_bytes=1024, user_id=user_id or uuid.uuid4())

    return make


@pytest.fixture(scope="session")
def migrations_dir() -> Path:
    return MIGRATIONS_DIR


@pytest.fixture(scope="session")
def engine(migrations_dir: Path) -> Iterator[Engine]:
    with migrated_database("stats", migrations_dir) as migrated:
        yield migrated


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as session:
        yield session
