"""Alembic helpers: every service keeps its own migrations and its own database.

``upgrade``, ``downgrade`` and ``revision`` are alembic's commands for one service's migrations
folder; with ``sql=True`` the first two print the SQL (alembic's offline mode) and connect to
nothing. A service's ``env.py`` is one line, ``run_env(Base.metadata)``.

Online migrations take a PostgreSQL advisory lock (``pg_advisory_xact_lock``, one constant key;
advisory locks are per database) before alembic reads the current revision, inside the
migrations' transaction: of several processes migrating one database at once (init containers
of replicas, a Job beside them), one migrates while the others wait, then find the database at
its head and do nothing, instead of failing on a table or revision that already exists.
"""

import sys
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from signup_shared.outbox import outbox_ddl

MIGRATION_LOCK_KEY = 7_424_917_319_505_216_339
"""The advisory lock key of migrations (any constant bigint; chosen once, never changed)."""
_DUPLICATE_DATABASE = "42P04"


class SetupError(Exception):
    """The database setup cannot be done as asked (its message says why and what to do)."""


def ensure_database(database_url: str) -> bool:
    """Create the service's database if it is missing; True if it was created.

    A service's own role may not create databases: the credentials setup (``make run`` runs
    ``deploy/credentials/setup.py``, as the superuser) creates it, owned by that role.
    """
    url = make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                try:
                    connection.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
                except sa.exc.ProgrammingError as exc:
                    if getattr(exc.orig, "sqlstate", None) == _DUPLICATE_DATABASE:
                        return False  # another process created it a moment ago
                    raise SetupError(
                        f"database {url.database!r} does not exist and role {url.username!r} may "
                        "not create it: run deploy/credentials/setup.py (make run does)"
                    ) from exc
            return not exists
    finally:
        admin.dispose()


def ensure_role_and_database(admin_url: str, database_url: str) -> bool:
    """As a superuser (``admin_url``): the login role of ``database_url`` with its password, and
    its database, owned by that role and reachable by no other (CONNECT revoked from PUBLIC).

    Idempotent; True if the database was created. A database that exists already (created by an
    older setup as the superuser) is handed over to the role, with every object in it.
    """
    url = make_url(database_url)
    role, database = url.username, url.database
    if not role or not database:
        raise SetupError(f"{url.render_as_string()} names no user or no database")
    admin = sa.create_engine(
        make_url(admin_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            quote = connection.dialect.identifier_preparer.quote
            superuser = connection.scalar(
                sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}
            )
            if superuser:
                raise SetupError(
                    f"role {role!r} is a superuser: give the service a role of its own "
                    "(<SERVICE>_DATABASE_URL)"
                )
            # The password travels only as a SCRAM verifier: never in clear in the statement,
            # so neither an error text nor the server's statement log can show it.
            password = (
                "NULL"
                if url.password is None
                else f"'{scram_verifier(connection, role, url.password)}'"
            )
            verb = "CREATE" if superuser is None else "ALTER"
            try:
                connection.exec_driver_sql(
                    f"{verb} ROLE {quote(role)} WITH LOGIN NOSUPERUSER NOCREATEDB "
                    f"NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {password}"
                )
            except sa.exc.DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                raise SetupError(f"could not {verb.lower()} role {role!r} ({sqlstate})") from None
            created = not connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            )
            db, owner = quote(database), quote(role)
            if created:
                connection.execute(sa.text(f"CREATE DATABASE {db} OWNER {owner}"))
            else:
                connection.execute(sa.text(f"ALTER DATABASE {db} OWNER TO {owner}"))
            connection.execute(sa.text(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC"))
        if not created:
            _hand_over_objects(make_url(admin_url).set(database=database), role)
        return created
    finally:
        admin.dispose()


def scram_verifier(connection: sa.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` for ``role``, computed by libpq on the client
    (``PQencryptPasswordConn``, psycopg's ``encrypt_password``), as the server stores it."""
    raw = connection.connection.dbapi_connection
    pgconn = getattr(raw, "pgconn", None)
    if pgconn is None:
        raise SetupError("the role setup needs a psycopg 3 connection (postgresql+psycopg://)")
    verifier: bytes = pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    return verifier.decode()


_FOREIGN_OBJECTS = """
SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, CAST(:role AS text))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.relowner <> to_regrole(CAST(:role AS text))
UNION ALL
SELECT format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, CAST(:role AS text))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> to_regrole(CAST(:role AS text))
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                      AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, CAST(:role AS text))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proowner <> to_regrole(CAST(:role AS text))
UNION ALL
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, CAST(:role AS text))
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
   AND t.typowner <> to_regrole(CAST(:role AS text))
"""


def _hand_over_objects(admin_url: sa.URL, role: str) -> None:
    """Make ``role`` the owner of every object of the public schema (tables first)."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            statements = connection.scalars(sa.text(_FOREIGN_OBJECTS), {"role": role}).all()
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


FILE_TEMPLATE = "%%(rev)s_%%(slug)s"


def config(database_url: str, migrations_dir: Path, stdout: TextIO | None = None) -> Config:
    """Alembic's configuration for one service's migrations (no ini file)."""
    out = stdout or sys.stdout
    result = Config(stdout=out, output_buffer=out)  # messages, and the SQL of ``sql=True``
    result.set_main_option("script_location", str(migrations_dir))
    result.set_main_option("file_template", FILE_TEMPLATE)
    result.attributes["database_url"] = database_url
    return result


def upgrade(
    database_url: str,
    migrations_dir: Path,
    revision: str = "head",
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
) -> None:
    """Apply migrations up to ``revision``; ``sql=True`` prints their SQL instead."""
    command.upgrade(config(database_url, migrations_dir, stdout), revision, sql=sql)


def downgrade(
    database_url: str,
    migrations_dir: Path,
    revision: str,
    *,
    sql: bool = False,
    stdout: TextIO | None = None,
) -> None:
    """Undo migrations down to ``revision`` (an id, ``-1``, ``base``); ``sql=True`` prints the SQL
    of undoing everything from the newest revision down to ``revision`` instead."""
    settings = config(database_url, migrations_dir, stdout)
    if sql and ":" not in revision:
        if revision.startswith("-"):
            raise SetupError(
                f"downgrade {revision} --sql: the database is not read in SQL mode, so name the "
                "target revision (an id, or base) instead of a relative step"
            )
        revision = f"{ScriptDirectory.from_config(settings).get_current_head()}:{revision}"
    command.downgrade(settings, revision, sql=sql)


def revision(
    database_url: str, migrations_dir: Path, message: str, *, autogenerate: bool = False
) -> Path:
    """Write a new migration file after the newest one (ids ``0001``, ``0002``, ...); with
    ``autogenerate`` alembic fills it from the difference between the models and the database."""
    settings = config(database_url, migrations_dir)
    script = ScriptDirectory.from_config(settings)
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    made = command.revision(
        settings,
        message=message,
        autogenerate=autogenerate,
        rev_id=f"{max(numbers, default=0) + 1:04d}",
    )
    scripts = made if isinstance(made, list) else [made]
    if not scripts or scripts[0] is None:
        raise SetupError("alembic wrote no revision")
    return Path(scripts[0].path)


def run_env(target_metadata: MetaData) -> None:
    """The body of a service's ``env.py``: online migrations, or SQL output in offline mode."""
    url = context.config.attributes["database_url"]
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            lock_migrations(connection)
            context.run_migrations()
    engine.dispose()


def lock_migrations(connection: sa.Connection) -> None:
    """Wait until no other process migrates this database; held until this transaction ends."""
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))


def create_outbox_table() -> None:
    """Migration step: the outbox table, its indexes and the trigger that wakes the relay."""
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("producer", sa.String(100), nullable=False),
        sa.Column("correlation_id", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_outbox_pending", "outbox", ["position"], postgresql_where=sa.text("sent_at IS NULL")
    )
    op.create_index(
        "ix_outbox_sent_at", "outbox", ["sent_at"], postgresql_where=sa.text("sent_at IS NOT NULL")
    )
    for statement in outbox_ddl():
        op.execute(statement)


def create_inbox_table() -> None:
    """Migration step: the inbox table of the idempotent consumer."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
