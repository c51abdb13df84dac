"""notifications: a user is owed each kind of message on a channel once

Revision ID: 0002
Revises: 0001

Before this revision a second ``UserSignedUp`` for the same user (a new event id) owed that user a
second welcome. Such pairs already stored keep their oldest row; the later copies (the second
welcome, sent or not) are removed so the unique constraint can hold.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONSTRAINT = "uq_notifications_user_kind"


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM notifications AS later USING notifications AS earlier"
            " WHERE later.user_id = earlier.user_id AND later.channel = earlier.channel"
            " AND later.template = earlier.template"
            " AND (later.created_at, later.id) > (earlier.created_at, earlier.id)"
        )
    )
    op.create_unique_constraint(CONSTRAINT, "notifications", ["user_id", "channel", "template"])


def downgrade() -> None:
    op.drop_constraint(CONSTRAINT, "notifications", type_="unique")
