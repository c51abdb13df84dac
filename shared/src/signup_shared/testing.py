"""Test kit shared by every service: fakes for unit tests, server URLs for integration tests.

Integration fixtures take servers from ``TEST_DATABASE_URL`` / ``TEST_AMQP_URL``, which the
``signup_shared.pytest_servers`` plugin sets once per session (environment, else the local servers,
else testcontainers where Docker answers, else a one-line skip); ``server_source()`` says which.
"""

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from signup_contracts import testing as event_factories
from signup_contracts.amqp import EVENTS_EXCHANGE
from signup_shared import migrations, pytest_servers
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.publisher import PublishError, Ticket
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.outbox import outbox_ddl
from signup_shared.settings import LOCAL_AMQP_URL, LOCAL_POSTGRES_URL


def user_signed_up(producer: str = "accounts", **overrides: object) -> Envelope[UserSignedUp]:
    """A valid ``UserSignedUp`` envelope; any payload field can be overridden.

    Built by the contracts' test kit (``signup_contracts.testing``, which also has
    ``space_provisioned`` and ``build`` for every published version).
    """
    return event_factories.user_signed_up(producer=producer, **overrides)


class FakeMessage:
    """A broker message for runtime unit tests: whatever it holds, and what was done to it."""

    def __init__(
        self,
        body: Any = b"",
        headers: Any = None,
        properties: Any = None,
        delivery_info: Any = None,
        delivery_tag: int = 0,
    ) -> None:
        self.body, self.headers, self.properties = body, headers, properties
        self.delivery_info, self.delivery_tag = delivery_info, delivery_tag
        self.acks: list[bool] = []
        self.rejects: list[bool] = []

    @classmethod
    def tagged(cls, tag: int, body: bytes, headers: dict[str, Any] | None = None) -> "FakeMessage":
        """An ordinary delivery of ``accounts.user_signed_up`` with delivery tag ``tag``."""
        return cls(
            body,
            headers or {},
            {"message_id": f"m{tag}"},
            {"exchange": EVENTS_EXCHANGE, "routing_key": "accounts.user_signed_up"},
            tag,
        )

    def ack(self, multiple: bool = False) -> None:
        self.acks.append(multiple)

    def reject(self, requeue: bool = False) -> None:
        self.rejects.append(requeue)


class FakePublisher:
    """Collects published batches; ``fail_next`` makes the next batch fail after confirming some."""

    def __init__(self) -> None:
        self.batches: list[list[OutgoingMessage]] = []
        self.fail_next: PublishError | None = None
        self._sent: dict[int, list[OutgoingMessage]] = {}

    def send(self, messages: Sequence[OutgoingMessage]) -> Ticket:
        ticket = Ticket(0, len(self._sent) + 1, frozenset(m.message_id for m in messages))
        self._sent[ticket.last_tag] = list(messages)
        return ticket

    def wait(self, ticket: Ticket) -> None:
        messages = self._sent.pop(ticket.last_tag)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.batches.append(messages)

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        self.wait(self.send(messages))

    @property
    def published(self) -> list[OutgoingMessage]:
        return [message for batch in self.batches for message in batch]


def server_source() -> str:
    """Where this session's servers come from (chosen by ``signup_shared.pytest_servers``)."""
    return pytest_servers.server_summary()


def postgres_server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES_URL).rstrip("/")


def amqp_url() -> str:
    return os.environ.get("TEST_AMQP_URL", os.environ.get("AMQP_URL", LOCAL_AMQP_URL))


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[Engine]:
    """A database created for this test session and dropped afterwards, leaving nothing behind."""
    name = f"{prefix}_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{postgres_server_url()}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = sa.create_engine(f"{postgres_server_url()}/{name}", pool_size=5, max_overflow=10)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def outbox_database(prefix: str, metadata: sa.MetaData) -> Iterator[Engine]:
    """A scratch database with ``metadata``'s tables and the outbox's triggers and functions."""
    with scratch_database(prefix) as engine:
        metadata.create_all(engine)
        with engine.begin() as connection:
            for statement in outbox_ddl():
                connection.execute(sa.text(statement))
        yield engine


@contextlib.contextmanager
def migrated_database(prefix: str, migrations_dir: Path) -> Iterator[Engine]:
    """A scratch database with the service's migrations applied (so they are tested too)."""
    with scratch_database(prefix) as engine:
        migrations.upgrade(engine.url.render_as_string(hide_password=False), migrations_dir)
        yield engine


@contextlib.contextmanager
def rollback_session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is always rolled back.

    The code under test may commit: with ``join_transaction_mode="create_savepoint"`` its
    commits only release savepoints, and nothing reaches the database.
    """
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            outer.rollback()
