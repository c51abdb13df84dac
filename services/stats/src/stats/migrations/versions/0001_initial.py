"""counters, plan_signups, daily_signups, inbox

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
        "counters",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "plan_signups",
        sa.Column("plan", sa.String(20), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "daily_signups",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    create_inbox_table()


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("daily_signups")
    op.drop_table("plan_signups")
    op.drop_table("counters")
