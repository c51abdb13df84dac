"""spaces, outbox, inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from signup_shared.migrations import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

plan = postgresql.ENUM("free", "pro", "team", name="plan", create_type=False)
status = postgresql.ENUM("ready", name="space_status", create_type=False)


def upgrade() -> None:
    plan.create(op.get_bind(), checkfirst=True)
    status.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "spaces",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("plan", plan, nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", status, nullable=False),
        sa.Column("storage_path", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", name="uq_spaces_user_id"),
        sa.CheckConstraint("quota_bytes >= 0", name="ck_spaces_quota_bytes_non_negative"),
    )
    create_outbox_table()
    create_inbox_table()


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("spaces")
    status.drop(op.get_bind(), checkfirst=True)
    plan.drop(op.get_bind(), checkfirst=True)
