"""Database fixtures: every store test runs on SQLite and on the real PostgreSQL at 127.0.0.1:5432.

One uniquely named PostgreSQL database is created for the whole session and dropped at its end; tables
are emptied before each test. Under CI (`CI=true`) an unreachable PostgreSQL fails the tests instead of
skipping them. Import the fixtures into a test module: `from tests.dbsupport import db_url, pg_url, store`.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from cds.cards import Card, Coding, Source, Suggestion
from cds.store import Store, db

PG_ADMIN_URL = os.environ.get(
    "CDS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql"]


class _SessionDatabase:
    """Created on first use, dropped when the last session-scoped user finishes."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.users = 0
        self.lock = threading.Lock()

    def acquire(self) -> str:
        with self.lock:
            if self.url is None:
                name = f"spine_cds_test_{os.getpid()}_{secrets.token_hex(4)}"
                admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
                try:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                finally:
                    admin.dispose()
                self.url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
            self.users += 1
            return self.url

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users or self.url is None:
                return
            name = sa.engine.make_url(self.url).database
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            finally:
                admin.dispose()
            self.url = None


_pg = _SessionDatabase()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        url = _pg.acquire()
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc.orig!r}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(message)
    yield url
    _pg.release()


def reset(url: str) -> None:
    """Migrate, then empty every table (each test starts from nothing)."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with engine.begin() as conn:
            if db.is_postgres(conn):
                conn.execute(sa.text("TRUNCATE served_cards, feedback, suppressed_cards RESTART IDENTITY"))
            else:
                conn.execute(sa.text("DELETE FROM feedback"))
                conn.execute(sa.text("DELETE FROM served_cards"))
                conn.execute(sa.text("DELETE FROM suppressed_cards"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    url = request.getfixturevalue("pg_url")
    reset(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def card(rule: str | None = "rule-a", suggestions: int = 0, indicator: str = "info") -> Card:
    """A real card as a rule would build it (uuid, topic code, suggestion uuids)."""
    topic = Coding(system="urn:spine-cds:rule", code=rule) if rule else None
    return Card(
        summary=f"card for {rule}",
        indicator=indicator,
        source=Source(label="test", topic=topic),
        suggestions=[Suggestion(label=f"s{i}") for i in range(suggestions)],
        selectionBehavior="any" if suggestions else None,
    )


def accepted(card_uuid: str, *suggestions: str, at: str = "2026-01-15T10:05:31Z") -> dict[str, Any]:
    return {
        "card": card_uuid,
        "outcome": "accepted",
        "outcomeTimestamp": at,
        "acceptedSuggestions": [{"id": s} for s in suggestions or ("s-any",)],
    }


def overridden(
    card_uuid: str,
    code: str | None = "not-indicated",
    comment: str | None = None,
    at: str = "2026-01-15T10:05:31Z",
) -> dict[str, Any]:
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": "urn:spine-cds:override", "code": code, "display": f"Reason {code}"}
    if comment:
        reason["userComment"] = comment
    return {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": at, "overrideReason": reason}
