"""audit_users (one row per user), inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from signup_shared.migrations import create_inbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_users",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("first_event_id", sa.Uuid(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
    )
    create_inbox_table()


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("audit_users")
