"""api_keys; erasures and their confirmations; users' personal columns nullable (erased)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("client", sa.String(64), nullable=False, index=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    # Metadata-only changes (no table rewrite): nullable columns and a column without default.
    for column in ("email", "full_name", "locale"):
        op.alter_column("users", column, nullable=True)
    op.add_column("users", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.create_table(
        "erasures",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_erasures_outstanding",
        "erasures",
        ["requested_at"],
        postgresql_where=sa.text("completed_at IS NULL"),
    )
    op.create_table(
        "erasure_confirmations",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("erasures.user_id"), primary_key=True),
        sa.Column("holder", sa.String(100), primary_key=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasure_confirmations")
    op.drop_index("ix_erasures_outstanding", table_name="erasures")
    op.drop_table("erasures")
    # Erased users cannot get their data back: they are removed with their subscriptions.
    op.execute(
        "DELETE FROM subscriptions WHERE user_id IN "
        "(SELECT id FROM users WHERE erased_at IS NOT NULL)"
    )
    op.execute("DELETE FROM users WHERE erased_at IS NOT NULL")
    op.drop_column("users", "erased_at")
    for column in ("email", "full_name", "locale"):
        op.alter_column("users", column, nullable=False)
    op.drop_table("api_keys")
