"""notifications: one welcome per user, decided by the first event for the user

Revision ID: 0002
Revises: 0001

Before this revision a second ``UserSignedUp`` for the same user (a new event id) owed that user a
second welcome, and one with a phone number owed an SMS the first event never asked for.
``welcomed_users`` holds the claim of each user's welcome (the first event for the user); it is
filled from the stored notifications (each user's oldest event). Copies of a welcome already
stored keep their oldest row; messages owed by a later event and not sent yet are removed (they
were never owed); what was sent stays, as history.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONSTRAINT = "uq_notifications_user_kind"


def upgrade() -> None:
    op.create_table(
        "welcomed_users",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("welcomed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        sa.text(
            "INSERT INTO welcomed_users (user_id, event_id, welcomed_at)"
            " SELECT DISTINCT ON (user_id) user_id, causing_event_id, created_at"
            " FROM notifications ORDER BY user_id, created_at, id"
        )
    )
    op.execute(
        sa.text(
            "DELETE FROM notifications AS later USING notifications AS earlier"
            " WHERE later.user_id = earlier.user_id AND later.channel = earlier.channel"
            " AND later.template = earlier.template"
            " AND (later.created_at, later.id) > (earlier.created_at, earlier.id)"
        )
    )
    op.execute(
        sa.text(
            "DELETE FROM notifications USING welcomed_users"
            " WHERE notifications.user_id = welcomed_users.user_id"
            " AND notifications.causing_event_id <> welcomed_users.event_id"
            " AND notifications.status = 'pending'"
        )
    )
    op.create_unique_constraint(CONSTRAINT, "notifications", ["user_id", "channel", "template"])


def downgrade() -> None:
    op.drop_constraint(CONSTRAINT, "notifications", type_="unique")
    op.drop_table("welcomed_users")
