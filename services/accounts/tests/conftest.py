from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import accounts
from signup_shared.testing import migrated_database, rollback_session

MIGRATIONS = Path(accounts.__file__).parent / "migrations"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with migrated_database("accounts", MIGRATIONS) as engine:
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as session:
        yield session
