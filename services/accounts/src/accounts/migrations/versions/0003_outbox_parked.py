"""outbox: rows the relay cannot publish are parked (refusals, parked_at, parked_reason)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outbox", sa.Column("refusals", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("parked_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_outbox_parked",
        "outbox",
        ["position"],
        postgresql_where=sa.text("parked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_column("outbox", "parked_reason")
    op.drop_column("outbox", "parked_at")
    op.drop_column("outbox", "refusals")
