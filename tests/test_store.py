"""The store on SQLite and PostgreSQL: migrations, card audit (queued, never lost), feedback, reports."""

from __future__ import annotations

import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cds.config import Settings
from cds.store import Store, db, feedback_key, report
from cds.store.core import utcnow
from cds.store.schema import feedback, metadata, served_cards
from tests.dbsupport import accepted, card, overridden

NOW = datetime(2026, 1, 15, 12, 0)


def rows(s: Store, table: sa.Table) -> list[dict]:
    with s.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def test_migration_creates_the_declared_schema(store):
    assert db.current_revision(store.engine) == db.head_revision() == "0002"
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"migrations and cds/store/schema.py disagree: {diff}"


def test_concurrent_upgrades_agree(db_url):
    engines = [db.make_engine(db_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            revisions = list(pool.map(lambda e: db.upgrade(e, force=True), engines))
    finally:
        for e in engines:
            e.dispose()
    assert revisions == ["0002"] * 4


def test_served_cards_are_audited_with_hashed_patient(store):
    a, b = card("rule-a", suggestions=2, indicator="warning"), card(None)
    assert store.record_served("svc", "hook-1", "hash-of-p1", [a, b], at=NOW) == 2
    assert store.flush(10)
    got = {r["card_uuid"]: r for r in rows(store, served_cards)}
    assert got[a.uuid] == {
        "card_uuid": a.uuid,
        "service": "svc",
        "rule": "rule-a",
        "indicator": "warning",
        "hook_instance": "hook-1",
        "patient_hash": "hash-of-p1",
        "created_at": NOW,
        "suggestion_uuids": [s.uuid for s in a.suggestions],
        "override_reasons": None,  # offered none
        "suggestion_orders": None,  # its suggestions order nothing
    }
    assert got[b.uuid]["rule"] is None and got[b.uuid]["suggestion_uuids"] == []


def test_close_flushes_every_queued_row(db_url):
    s = Store(db_url)
    write = s.writer._write

    def slow(batch):
        time.sleep(0.02)
        write(batch)

    s.writer._write = slow
    cards = [card() for _ in range(60)]
    for c in cards:
        s.record_served("svc", "h", None, [c])
    assert s.writer.pending > 0, "the rows must still be queued when close() starts"
    assert s.close(30)
    again = Store(db_url)
    try:
        assert {r["card_uuid"] for r in rows(again, served_cards)} == {c.uuid for c in cards}
    finally:
        again.close()


def test_full_queue_writes_synchronously_instead_of_dropping(db_url):
    s = Store(db_url, queue_max=2, batch_max=1)
    gate = threading.Event()
    write = s.writer._write

    def gated(batch):
        if threading.current_thread().name == "cds-audit-writer":
            gate.wait(10)
        write(batch)

    s.writer._write = gated
    cards = [card() for _ in range(6)]
    for c in cards:
        s.record_served("svc", "h", None, [c])
    assert s.writer.sync_fallbacks >= 1
    gate.set()
    assert s.close(10)
    check = Store(db_url)
    try:
        assert len(rows(check, served_cards)) == 6
    finally:
        check.close()


def test_idle_writer_thread_exits_and_restarts(store, monkeypatch):
    monkeypatch.setattr("cds.store.writer.IDLE_EXIT_S", 0.05)
    first, second = card(), card()
    store.record_served("svc", "h", None, [first])
    assert store.flush(10)
    deadline = time.monotonic() + 5
    while store.writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.writer._thread is None, "an idle writer must not hold a thread forever"
    store.record_served("svc", "h", None, [second])
    assert store.flush(10)
    assert {r["card_uuid"] for r in rows(store, served_cards)} == {first.uuid, second.uuid}


def test_failed_batches_are_retried(store):
    write, failures = store.writer._write, []

    def flaky(batch):
        if len(failures) < 2:
            failures.append(1)
            raise sa.exc.OperationalError("INSERT", {}, Exception("database restarting"))
        write(batch)

    store.writer._write = flaky
    c = card()
    store.record_served("svc", "h", None, [c])
    assert store.flush(10)
    assert len(failures) == 2 and [r["card_uuid"] for r in rows(store, served_cards)] == [c.uuid]


def test_a_row_the_database_refuses_does_not_block_the_others(store, monkeypatch):
    write, good = store.writer._write, [card() for _ in range(3)]
    poison = card()

    def refusing(batch):
        if any(r["card_uuid"] == poison.uuid for r in batch):
            raise sa.exc.DataError("INSERT", {}, Exception("value too long"))
        write(batch)

    events: list[tuple[str, dict]] = []
    monkeypatch.setattr("cds.store.writer.log", lambda _lg, _lvl, event, **f: events.append((event, f)))
    store.writer._write = refusing
    store.record_served("svc", "h", None, [good[0], poison, *good[1:]])
    assert store.flush(10)
    assert {r["card_uuid"] for r in rows(store, served_cards)} == {c.uuid for c in good}
    assert ("audit.lost", {"rows": 1, "card_uuids": [poison.uuid]}) in events


def test_feedback_is_idempotent(store):
    c = card(suggestions=1)
    store.record_served("svc", "h", None, [c])
    store.flush()
    item = accepted(c.uuid, c.suggestions[0].uuid)
    same_instant = {**item, "outcomeTimestamp": "2026-01-15T11:05:31+01:00"}
    first = store.save_feedback("svc", [item, item, same_instant])
    assert (first.received, first.stored, first.unknown_cards) == (3, 1, 0)
    assert store.save_feedback("svc", [item]).stored == 0
    later = store.save_feedback("svc", [{**item, "outcomeTimestamp": "2026-01-15T10:06:00Z"}])
    assert later.stored == 1
    assert feedback_key(overridden(c.uuid, comment="a")) != feedback_key(overridden(c.uuid, comment="b"))
    assert len(rows(store, feedback)) == 2


def test_identical_feedback_from_many_threads_is_stored_once(store):
    item = overridden("card-x", code="dup")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.save_feedback("svc", [item]), range(16)))
    assert sum(r.stored for r in results) == 1
    assert len(rows(store, feedback)) == 1


def test_feedback_for_unserved_card_is_flagged_then_reconciled(store):
    late = card()
    result = store.save_feedback("svc", [overridden(late.uuid), overridden("never-served")])
    assert (result.stored, result.unknown_cards) == (2, 2)
    store.record_served("svc", "h", None, [late])  # its audit row lands after the feedback
    assert store.flush()
    flags = {r["card_uuid"]: r["unknown_card"] for r in rows(store, feedback)}
    assert flags == {late.uuid: False, "never-served": True}


def seed_report(store: Store) -> dict[str, list]:
    a = [card("rule-a") for _ in range(4)]
    b = [card("rule-b") for _ in range(2)]
    old = card("rule-a")
    store.record_served("svc", "h1", None, a, at=NOW)
    store.record_served("svc", "h2", None, b, at=NOW + timedelta(days=1))
    store.record_served("svc", "h0", None, [old], at=NOW - timedelta(days=30))
    store.flush()
    store.save_feedback(
        "svc",
        [
            accepted(a[0].uuid),
            accepted(a[0].uuid, at="2026-01-15T10:09:00Z"),  # same card accepted twice: one card
            accepted(a[1].uuid),
            overridden(a[2].uuid, code="not-indicated"),
            overridden(b[0].uuid, code="already-done"),
            overridden(b[1].uuid, code="already-done"),
            overridden(b[1].uuid, code=None, comment="comment only"),
            accepted(old.uuid),
        ],
    )
    return {"a": a, "b": b, "old": [old]}


def test_report_counts_cards_and_reasons(store):
    seed_report(store)
    with store.read() as conn:
        stats = {s.rule: s for s in report.rule_stats(conn)}
        recent = {s.rule: s for s in report.rule_stats(conn, since=NOW - timedelta(days=1))}
        days = report.daily(conn, since=NOW - timedelta(days=1))
        top = report.top_reasons(conn)
        totals = report.volumes(conn)
    assert stats["rule-a"].to_json() == {
        "service": "svc",
        "rule": "rule-a",
        "shown": 5,
        "accepted": 3,
        "overridden": 1,
        "suppressed": 0,
        "override_reasons": {"not-indicated": 1},
    }
    assert recent["rule-a"].shown == 4 and recent["rule-a"].accepted == 2
    assert recent["rule-a"].acceptance_rate == pytest.approx(0.5)
    assert recent["rule-b"].override_reasons == {"already-done": 2}
    assert recent["rule-b"].override_rate == 1.0
    assert recent["rule-b"].reason_labels == {"already-done": "Reason already-done"}
    assert days == [
        {"rule": "rule-a", "day": "2026-01-15", "shown": 4, "accepted": 2, "overridden": 1},
        {"rule": "rule-b", "day": "2026-01-16", "shown": 2, "accepted": 0, "overridden": 2},
    ]
    assert [(r["code"], r["count"]) for r in top] == [("already-done", 2), ("not-indicated", 1)]
    assert totals == {"shown": 7, "feedback": 8, "unknown_card_feedback": 0, "suppressed": 0}


def test_prune_deletes_only_old_rows(store):
    now = utcnow()
    old, new = card(), card()
    store.record_served("svc", "h", None, [old], at=now - timedelta(days=40))
    store.record_served("svc", "h", None, [new], at=now - timedelta(days=10))
    store.flush()
    store.save_feedback("svc", [accepted(old.uuid)], at=now - timedelta(days=35))
    store.save_feedback("svc", [accepted(new.uuid)], at=now - timedelta(days=1))
    assert store.prune(30) == {"served_cards": 1, "feedback": 1}
    assert [r["card_uuid"] for r in rows(store, served_cards)] == [new.uuid]
    assert [r["card_uuid"] for r in rows(store, feedback)] == [new.uuid]
    with pytest.raises(ValueError):
        store.prune(-1)


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        s.close()


def test_hash_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("CDS_HASH_KEY", raising=False)
    settings = Settings(data_dir=tmp_path / "d")
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: settings.resolved_hash_key(), range(8)))
    assert len(keys) == 1 and len(keys.pop()) == 64
    key_file = tmp_path / "d" / "hash.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "d").resolved_hash_key() == key_file.read_text().strip()
    assert Settings(data_dir=tmp_path / "d", hash_key="configured").resolved_hash_key() == "configured"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["hash.key"], "no temp files left behind"


def test_default_database_is_sqlite_in_the_data_dir(tmp_path):
    url = Settings(data_dir=tmp_path / "x").resolved_database_url()
    assert url == f"sqlite:///{(tmp_path / 'x' / 'cds.sqlite3').resolve()}"
    assert (tmp_path / "x").is_dir()


def test_plain_postgres_urls_use_psycopg():
    assert db.normalize_url("postgresql://u:p@h:5432/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("postgres://u@h/d").render_as_string() == "postgresql+psycopg://u@h/d"
    assert db.normalize_url("sqlite:///x.db").drivername == "sqlite"
