"""notifications, inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from signup_shared.migrations import create_inbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

channel = postgresql.ENUM("email", "sms", name="notification_channel", create_type=False)
status = postgresql.ENUM("pending", "sent", "failed", name="notification_status", create_type=False)


def upgrade() -> None:
    channel.create(op.get_bind(), checkfirst=True)
    status.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("channel", channel, nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("template_data", postgresql.JSONB(), nullable=False),
        sa.Column("status", status, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("last_error", sa.Text()),
        sa.Column("causing_event_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("causing_event_id", "channel", name="uq_notifications_event_channel"),
    )
    op.create_index(
        "ix_notifications_pending",
        "notifications",
        ["updated_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    create_inbox_table()


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("notifications")
    status.drop(op.get_bind(), checkfirst=True)
    channel.drop(op.get_bind(), checkfirst=True)
