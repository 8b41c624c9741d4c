"""Engines and migrations for SQLite and PostgreSQL, and the few SQL spellings that differ between them.

SQLite runs in WAL mode with synchronous=FULL (a committed feedback item survives a crash of the process
and of the machine) and a busy timeout. Write transactions start with BEGIN IMMEDIATE so that two writers
queue on the busy timeout instead of failing on a read-to-write lock upgrade.

PostgreSQL gets a timeout on every wait (issue 12). A server that accepts connections and never answers
(hung, stopped, a network path that drops replies) used to hold a request forever. Now:
- connecting gives up after `connect_timeout` (libpq semantics: whole seconds, at least 2);
- waiting for a pooled connection gives up after `pool_timeout`;
- inside `deadline(seconds)` (every store operation on the request path and the audit writer), each
  transaction first sets `statement_timeout` and `lock_timeout` to the time left, so a slow query is
  cancelled by the server and the connection stays usable; and every wait for the server's answer is bounded
  on the client too (`BoundedConnection`), so a server that says nothing at all cannot hold the thread: the
  connection is closed, the pool discards it, and the caller gets an OperationalError.
Migrations and the `cds db`/`cds report` commands run without a deadline: they may legitimately be slow.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
# Any constant: serialises migrations of concurrent workers, and the audit writer against feedback.
MIGRATION_LOCK = 0x5C_D5_00_01
AUDIT_LOCK = 0x5C_D5_00_02

_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()
_local = threading.local()
GRACE_S = 0.5  # the client waits this much past the server's statement_timeout for its error to arrive


@dataclass(frozen=True)
class Timeouts:
    """How long the service waits for its database (CDS_DB_* settings; README "Production")."""

    connect_s: int = 3  # libpq connect_timeout: whole seconds, 2 at least
    statement_s: float = 3.0  # one feedback post or audit batch, all its statements together
    pool_s: float = 1.0  # waiting for a free pooled connection
    ready_s: float = 2.0  # /readyz's database check; the readiness probe's timeout is 3 s
    retry_after_s: int = 5  # after a failure, feedback answers 503 at once for this long (Retry-After)
    report_s: float = 15.0  # the /analytics page's queries


class DatabaseTimeout(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection was closed (SQLAlchemy discards it)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every database wait of this thread inside the block to `seconds` in total (nested: the
    earlier deadline wins). Outside any deadline, waits are unbounded (migrations, CLI commands)."""
    previous = getattr(_local, "deadline", None)
    mine = time.monotonic() + seconds
    _local.deadline = mine if previous is None else min(previous, mine)
    try:
        yield
    finally:
        _local.deadline = previous


def remaining() -> float | None:
    """Seconds left before this thread's deadline (negative once passed), None without one."""
    limit = getattr(_local, "deadline", None)
    return None if limit is None else limit - time.monotonic()


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends at the thread's `deadline` (+ GRACE_S).

    psycopg runs each statement, commit and ping as a generator driven by `Connection.wait`; bounding that
    one method bounds them all, including SQLAlchemy's pre-ping. On expiry the connection is closed, since
    the protocol was left mid-exchange.
    """

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        left = remaining()
        if left is None:
            return super().wait(gen, interval, timeout)
        bound = max(0.0, left + GRACE_S)
        try:
            return super().wait(gen, interval, bound if timeout is None else min(timeout, bound))
        except psycopg.OperationalError as exc:
            if (remaining() or 0.0) + GRACE_S > 0.01:
                raise  # a real error from the server, not our clock
            self.close()
            raise DatabaseTimeout("the database did not answer before the deadline") from exc


_SET_TIMEOUTS = (
    "SELECT set_config('statement_timeout', %(ms)s, true), set_config('lock_timeout', %(ms)s, true)"
)


def _postgres_engine(parsed: sa.URL, timeouts: Timeouts) -> Engine:
    engine = sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=timeouts.pool_s,
    )

    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        left = remaining()
        if left is not None and left <= 0:
            raise DatabaseTimeout("no time left to connect to the database")
        budget = timeouts.connect_s if left is None else min(timeouts.connect_s, math.ceil(left))
        cparams["connect_timeout"] = max(2, int(budget))
        return BoundedConnection.connect(*cargs, **cparams)

    @sa.event.listens_for(engine, "begin")
    def _server_timeouts(conn: Connection) -> None:
        left = remaining()
        if left is not None:  # the server cancels a slow statement itself; the connection stays usable
            ms = max(1, int(left * 1000))
            conn.exec_driver_sql(_SET_TIMEOUTS, {"ms": str(ms)})

    return engine


def normalize_url(url: str) -> sa.URL:
    """`postgresql://` and `postgres://` (what most secrets hold) mean psycopg 3, the driver we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = sa.engine.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, timeouts: Timeouts | None = None) -> Engine:
    """An engine with the pragmas and pool this store needs; `sqlite://` is one shared in-memory DB."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        return _postgres_engine(parsed, timeouts or Timeouts())
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
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
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
        cfg = alembic_config()
        with engine.begin() as conn:
            advisory_lock(conn, MIGRATION_LOCK)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        _upgraded.add(key)
        return current_revision(engine)
