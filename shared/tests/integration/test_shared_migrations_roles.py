"""The role setup stores only a SCRAM verifier computed by libpq, never the password."""

import uuid

import pytest
import sqlalchemy as sa

from signup_shared import migrations
from signup_shared.testing import postgres_server_url

pytestmark = pytest.mark.integration


def test_the_role_gets_a_scram_verifier_and_its_own_database() -> None:
    name = f"roletest_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    server = postgres_server_url()
    url = sa.make_url(server).set(username=name, password=password, database=name)
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        assert migrations.ensure_role_and_database(server, url.render_as_string(False)) is True
        with admin.connect() as connection:
            stored = connection.scalar(
                sa.text("SELECT rolpassword FROM pg_authid WHERE rolname = :n"), {"n": name}
            )
            owner = connection.scalar(
                sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :n"),
                {"n": name},
            )
        assert stored.startswith("SCRAM-SHA-256$4096:")
        assert password not in stored
        assert owner == name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()
