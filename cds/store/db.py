"""Engines and migrations for SQLite and PostgreSQL, and the few SQL spellings that differ between them.

SQLite runs in WAL mode with synchronous=FULL (a committed feedback item survives a crash of the process
and of the machine) and a busy timeout. Write transactions start with BEGIN IMMEDIATE so that two writers
queue on the busy timeout instead of failing on a read-to-write lock upgrade.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:  # alembic is imported only when migrating (it costs ~0.1 s at start-up)
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
# Any constant: serialises migrations of concurrent workers, and the audit writer against feedback.
MIGRATION_LOCK = 0x5C_D5_00_01
AUDIT_LOCK = 0x5C_D5_00_02

_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def normalize_url(url: str) -> sa.URL:
    """`postgresql://` and `postgres://` (what most secrets hold) mean psycopg 3, the driver we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = sa.engine.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and pool this store needs; `sqlite://` is one shared in-memory DB."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    memory = parsed.database in (None, "", ":memory:")
    engine = sa.create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        poolclass=StaticPool if memory else None,
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def is_postgres(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "postgresql"


def insert_ignore(conn: Connection, table: sa.Table, key: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO NOTHING, in the connection's dialect."""
    dialect = postgresql if is_postgres(conn) else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])


def advisory_lock(conn: Connection, key: int, shared: bool = False) -> None:
    """A transaction-scoped lock on PostgreSQL; SQLite transactions are already serialised."""
    if is_postgres(conn):
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": key})


def day(conn: Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """The UTC calendar day of a naive-UTC timestamp, as 'YYYY-MM-DD' text."""
    if is_postgres(conn):
        return sa.func.to_char(column, "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", column)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(readonly=True) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, force: bool = False) -> str | None:
    """Bring the schema to the newest revision; cheap when this process already did it for this URL.

    Concurrent workers starting together take a lock (PostgreSQL advisory lock, SQLite write lock), so
    exactly one of them migrates and the others find the schema up to date.
    """
    key = engine.url.render_as_string(hide_password=False)
    with _upgrade_lock:
        if key in _upgraded and not force and engine.url.database not in (None, "", ":memory:"):
            return head_revision()
        from alembic import command

        cfg = alembic_config()
        with engine.begin() as conn:
            advisory_lock(conn, MIGRATION_LOCK)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        _upgraded.add(key)
        return current_revision(engine)
