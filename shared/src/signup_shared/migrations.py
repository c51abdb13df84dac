"""Alembic helpers: every service keeps its own migrations and its own database."""

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from signup_shared.outbox import outbox_ddl


def ensure_database(database_url: str) -> bool:
    """Create the service's database if it is missing; True if it was created."""
    url = make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                connection.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            return not exists
    finally:
        admin.dispose()


def upgrade(database_url: str, migrations_dir: Path, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = database_url
    command.upgrade(config, revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of a service's ``env.py`` (online migrations only)."""
    url = context.config.attributes["database_url"]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_outbox_table() -> None:
    """Migration step: the outbox table, its indexes and the trigger that wakes the relay."""
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("producer", sa.String(100), nullable=False),
        sa.Column("correlation_id", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_outbox_pending", "outbox", ["position"], postgresql_where=sa.text("sent_at IS NULL")
    )
    op.create_index(
        "ix_outbox_sent_at", "outbox", ["sent_at"], postgresql_where=sa.text("sent_at IS NOT NULL")
    )
    for statement in outbox_ddl():
        op.execute(statement)


def create_inbox_table() -> None:
    """Migration step: the inbox table of the idempotent consumer."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
