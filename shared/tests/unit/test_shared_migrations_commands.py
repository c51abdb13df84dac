"""Alembic through signup_shared.migrations: offline SQL up and down, and new revisions.

A throwaway migrations folder (env.py is the services' one line, ``run_env(metadata)``); SQL
mode connects to nothing, so these need no database (the URL only names the dialect).
"""

import io
from pathlib import Path

import pytest

from signup_shared import migrations

URL = "postgresql+psycopg://nobody:secret@127.0.0.1:1/nowhere"
ENV = """import sqlalchemy as sa

from signup_shared.migrations import run_env

run_env(sa.MetaData())
"""
MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

import sqlalchemy as sa
from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''
FIRST = '''"""widgets"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("widgets")
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "script.py.mako").write_text(MAKO)
    (tmp_path / "versions" / "0001_widgets.py").write_text(FIRST)
    return tmp_path


def test_upgrade_sql_prints_the_statements_without_a_database(folder: Path) -> None:
    out = io.StringIO()
    migrations.upgrade(URL, folder, sql=True, stdout=out)
    sql = out.getvalue()
    assert "CREATE TABLE widgets" in sql
    assert "alembic_version" in sql


def test_downgrade_sql_prints_the_undo_from_the_newest_revision(folder: Path) -> None:
    out = io.StringIO()
    migrations.downgrade(URL, folder, "base", sql=True, stdout=out)
    assert "DROP TABLE widgets" in out.getvalue()


def test_a_relative_downgrade_in_sql_mode_is_refused_clearly(folder: Path) -> None:
    with pytest.raises(migrations.SetupError, match="name the target revision"):
        migrations.downgrade(URL, folder, "-1", sql=True, stdout=io.StringIO())


def test_revision_writes_the_next_numbered_file(folder: Path) -> None:
    path = migrations.revision(URL, folder, "add gadgets")
    assert path == folder / "versions" / "0002_add_gadgets.py"
    text = path.read_text()
    assert 'revision = "0002"' in text or "revision = '0002'" in text
    assert "down_revision = '0001'" in text or 'down_revision = "0001"' in text
    out = io.StringIO()
    migrations.upgrade(URL, folder, sql=True, stdout=out)
    assert "0002" in out.getvalue()
