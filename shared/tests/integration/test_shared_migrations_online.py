"""migrate, downgrade and migrate again against the real PostgreSQL (a scratch database)."""

import io
import subprocess
import sys
import threading
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


def write_versions(folder: Path) -> None:
    (folder / "versions").mkdir()
    (folder / "env.py").write_text(ENV)
    for rev, down, table in (("0001", None, "first"), ("0002", "0001", "second")):
        text = VERSION.format(rev=rev, down=down, table=table)
        (folder / "versions" / f"{rev}_{table}.py").write_text(text)


def test_a_migration_waits_for_the_one_already_running_then_finds_nothing_to_do(
    tmp_path: Path,
) -> None:
    write_versions(tmp_path)
    with scratch_database("migrations") as engine:
        url = engine.url.render_as_string(hide_password=False)
        failures: list[BaseException] = []

        def migrate() -> None:
            try:
                migrations.upgrade(url, tmp_path, stdout=io.StringIO())
            except BaseException as exc:  # reported by the test, not lost in the thread
                failures.append(exc)

        with engine.connect() as holder:  # another process, in the middle of migrating
            holder.execute(sa.select(sa.func.pg_advisory_lock(migrations.MIGRATION_LOCK_KEY)))
            waiting = threading.Thread(target=migrate)
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive(), "migrated while another process held the lock"
            assert tables(engine) == set()
            holder.execute(sa.select(sa.func.pg_advisory_unlock(migrations.MIGRATION_LOCK_KEY)))
            holder.commit()
        waiting.join(timeout=30)
        assert not waiting.is_alive() and failures == []
        assert tables(engine) == {"first", "second"}


def test_concurrent_migrations_of_one_database_all_succeed(tmp_path: Path) -> None:
    """Four processes (alembic's context is per process) migrate one database at once."""
    write_versions(tmp_path)
    script = "import sys; from signup_shared import migrations; migrations.upgrade(*sys.argv[1:])"
    with scratch_database("migrations") as engine:
        url = engine.url.render_as_string(hide_password=False)
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url, str(tmp_path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [(run.wait(timeout=60), run.communicate()[1]) for run in runs]
        assert [status for status, _ in results] == [0, 0, 0, 0], results
        assert tables(engine) == {"first", "second"}
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0002"
