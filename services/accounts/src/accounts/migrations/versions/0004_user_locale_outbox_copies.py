"""users.locale; outbox unique by (event_id, version): one row per published version of an event

During a contract's migration window one event is written once per version, with one event id.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "users",
        sa.Column("locale", sa.String(35), server_default=sa.text("'en'"), nullable=False),
    )
    op.drop_constraint("outbox_event_id_key", "outbox", type_="unique")
    op.create_unique_constraint("uq_outbox_event_id_version", "outbox", ["event_id", "version"])


def downgrade() -> None:
    # Back to one row per event: the newest copy of each event stays, older copies go.
    op.execute(
        "DELETE FROM outbox older USING outbox newer "
        "WHERE older.event_id = newer.event_id AND older.version < newer.version"
    )
    op.drop_constraint("uq_outbox_event_id_version", "outbox", type_="unique")
    op.create_unique_constraint("outbox_event_id_key", "outbox", ["event_id"])
    op.drop_column("users", "locale")
