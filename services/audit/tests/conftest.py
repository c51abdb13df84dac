"""Fixtures shared by the audit tests: event factories and databases."""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import audit
from signup_contracts.testing import user_signed_up_v2
from signup_shared.events import Envelope
from signup_shared.testing import migrated_database, rollback_session, user_signed_up

MIGRATIONS_DIR = Path(audit.__file__).parent / "migrations"


@pytest.fixture
def signup_event() -> Callable[..., Envelope[Any]]:
    """``signup_event(user_id=..., version=1|2)``: a ``UserSignedUp`` of that version."""

    def make(user_id: uuid.UUID | None = None, version: int = 1) -> Envelope[Any]:
        build = user_signed_up_v2 if version == 2 else user_signed_up
        return build(user_id=user_id or uuid.uuid4())

    return make


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with migrated_database("audit", MIGRATIONS_DIR) as migrated:
        yield migrated


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with rollback_session(engine) as session:
        yield session
