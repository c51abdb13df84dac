"""migrate, downgrade and migrate again against the real PostgreSQL (a scratch database)."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from signup_shared import migrations
from signup_shared.testing import scratch_database

pytestmark = pytest.mark.integration

ENV = """import sqlalchemy as sa
from signup_shared.migrations import run_env

run_env(sa.MetaData())
"""
VERSION = '''"""{table}"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("{table}")
'''


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV)
    for rev, down, table in (("0001", None, "first"), ("0002", "0001", "second")):
        text = VERSION.format(rev=rev, down=down, table=table)
        (tmp_path / "versions" / f"{rev}_{table}.py").write_text(text)
    with scratch_database("migrations") as engine:
        url = engine.url.render_as_string(hide_password=False)
        migrations.upgrade(url, tmp_path)
        assert tables(engine) == {"first", "second"}
        migrations.downgrade(url, tmp_path, "-1")
        assert tables(engine) == {"first"}
        migrations.downgrade(url, tmp_path, "base")
        assert tables(engine) == set()
        migrations.upgrade(url, tmp_path, "0001")
        assert tables(engine) == {"first"}
