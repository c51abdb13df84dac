"""counted_users: who each counter has counted, so a user is counted once (natural key)

Users counted before this revision are not listed (stats never stored user ids): an event for
one of them arriving again after the upgrade would count them once more.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counted_users",
        sa.Column("counter", sa.Text(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("counted_users")
