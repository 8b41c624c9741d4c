"""The real server, killed with SIGKILL in the middle of a feedback burst, loses no acknowledged item;
stopped with SIGTERM, it loses no queued card audit. Both on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from cds.store import Store, feedback_key
from cds.store.schema import feedback, served_cards
from tests.builders import FIXTURES
from tests.dbsupport import accepted, overridden

CDS = Path(sys.executable).with_name("cds")
SERVICE = "l5-radiculopathy-patient-view"
THREADS = 8
KILL_AFTER_ACKS = 150


class Server:
    def __init__(self, tmp_path: Path, db: str, name: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
        env.update(
            CDS_DATABASE_URL=db,
            CDS_DATA_DIR=str(tmp_path / "data"),
            CDS_HASH_KEY="durability-test",
            CDS_LOG_LEVEL="WARNING",
            CDS_CLOCK="2026-01-15T15:00:00+00:00",
        )
        command = [str(CDS)] if CDS.exists() else [sys.executable, "-m", "hooks.app"]
        self.log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("server did not start")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.log.close()
        return code


def stored_keys(db: str) -> dict[str, int]:
    store = Store(db)
    try:
        with store.read() as conn:
            rows = conn.execute(
                sa.select(feedback.c.idempotency_key, sa.func.count()).group_by(feedback.c.idempotency_key)
            ).all()
            per_card = conn.execute(
                sa.select(feedback.c.card_uuid).group_by(feedback.c.card_uuid).having(sa.func.count() > 1)
            ).all()
    finally:
        store.close()
    assert per_card == [], "one item per card was posted, so no card may have two rows"
    return {key: n for key, n in rows}


def burst(base: str, stop: threading.Event, ledger: list[tuple[list[dict[str, Any]], int | None]]) -> None:
    """Post 1-3 new items per request (and now and then re-post the previous ones) until the server dies."""
    session, failures, previous = requests.Session(), 0, None
    for n in range(100_000):
        if stop.is_set() or failures >= 3:
            return
        if previous and n % 5 == 0:
            items = previous
        else:
            make = [accepted, overridden]
            items = [make[(n + k) % 2](f"dur-{uuid.uuid4()}") for k in range(1 + n % 3)]
        try:
            r = session.post(f"{base}/cds-services/{SERVICE}/feedback", json={"feedback": items}, timeout=10)
            status: int | None = r.status_code
            failures = 0
        except requests.RequestException:
            status, failures = None, failures + 1
        ledger.append((items, status))
        previous = items


def test_kill_9_mid_burst_loses_no_acknowledged_feedback(tmp_path, db_url):
    server = Server(tmp_path, db_url, "first")
    ledger: list[tuple[list[dict[str, Any]], int | None]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=burst, args=(server.base, stop, ledger)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(1 for _, s in ledger if s == 200) < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    for t in threads:
        t.join(30)
    stop.set()

    acked = {feedback_key(i) for items, status in ledger if status == 200 for i in items}
    attempted = {feedback_key(i): i for items, _ in ledger for i in items}
    failed = [items for items, status in ledger if status is None]
    assert len(acked) >= KILL_AFTER_ACKS and failed, "the kill must land in the middle of the burst"
    assert {s for _, s in ledger} <= {200, None}, "nothing but 200 or a dropped connection"

    restarted = Server(tmp_path, db_url, "second")  # recovers the WAL / the PostgreSQL session died
    try:
        in_db = stored_keys(db_url)
        assert acked <= set(in_db), f"{len(acked - set(in_db))} acknowledged items were lost"
        assert set(in_db) <= set(attempted) and set(in_db.values()) == {1}
        # Everything again, acknowledged or not: idempotent, so only what never landed is new.
        items = list(attempted.values())
        new = 0
        for i in range(0, len(items), 100):
            r = requests.post(
                f"{restarted.base}/cds-services/{SERVICE}/feedback",
                json={"feedback": items[i : i + 100]},
                timeout=30,
            )
            assert r.status_code == 200
            new += r.json()["stored"]
        assert new == len(attempted) - len(in_db)
        assert len(stored_keys(db_url)) == len(attempted)
    finally:
        assert restarted.stop(signal.SIGTERM) == 0
    print(
        f"\ndurability: {len(acked)} items acknowledged before kill -9, {len(failed)} requests cut off, "
        f"{len(in_db)} items in the database after restart "
        f"({len(in_db) - len(acked)} committed but unacknowledged)"
    )


def test_sigterm_flushes_the_queued_card_audit(tmp_path, db_url):
    server = Server(tmp_path, db_url, "graceful")
    body = json.loads((FIXTURES / "scenarios" / "01-l5-no-mri.json").read_text())
    served: list[str] = []

    def calls() -> None:
        session = requests.Session()
        for _ in range(15):
            r = session.post(
                f"{server.base}/cds-services/{SERVICE}", json={**body, "hookInstance": str(uuid.uuid4())}
            )
            assert r.status_code == 200
            served.extend(c["uuid"] for c in r.json()["cards"])

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert server.stop(signal.SIGTERM) == 0  # at once: rows may still be in the writer's queue
    assert len(served) == 4 * 15 * 2
    store = Store(db_url)
    try:
        with store.read() as conn:
            audited = set(conn.execute(sa.select(served_cards.c.card_uuid)).scalars())
            rules = set(conn.execute(sa.select(served_cards.c.rule).distinct()).scalars())
    finally:
        store.close()
    assert set(served) <= audited, f"{len(set(served) - audited)} acknowledged cards missing from the audit"
    assert rules == {"mri", "conservative-care"}
