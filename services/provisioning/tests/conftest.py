import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import provisioning
from signup_contracts.testing import user_signed_up
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.testing import migrated_database, rollback_session

MIGRATIONS_DIR = Path(provisioning.__file__).parent / "migrations"
SignupFactory = Callable[..., Envelope[UserSignedUp]]


@pytest.fixture
def signup_event() -> SignupFactory:
    """Builds a ``UserSignedUp`` envelope as accounts would publish it."""

    def build(
        plan: str = "free",
        user_id: uuid.UUID | None = None,
        correlation_id: str = "corr-signup-1",
    ) -> Envelope[UserSignedUp]:
        return user_signed_up(
            user_id=user_id or uuid.uuid4(),
            email="jane@example.com",
            full_name="Jane Doe",
            phone="+15555550100",
            plan=plan,
            signed_up_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            correlation_id=correlation_id,
        )

    return build


@pytest.fixture(scope="session")
def migrations_dir() -> Path:
    return MIGRATIONS_DIR


@pytest.fixture(scope="session")
def engine(migrations_dir: Path) -> Iterator[Engine]:
    with migrated_database("provisioning", migrations_dir) as migrated:
        yield migrated


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as rolled_back:
        yield rolled_back
