"""What the suppression lookup adds to a hook call: p50/p95 with and without it, in one run.

The lookup (cds.suppression) runs once per call that produces a card a feedback item could silence: one
indexed query joining the card audit to the feedback of that patient and those rules, on its own thread
with a timeout. Two modes, interleaved round by round so machine noise hits them equally:
- `off`: the engine has no suppressor (the baseline, what `cds evaluate` does);
- `lookup`: production, against a database seeded with the audit and feedback of many other patients and
  some history of this one (feedback that silences nothing, so both modes return the same cards).

    python benchmarks/suppression_overhead.py                    # SQLite file in a temp dir
    python benchmarks/suppression_overhead.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds.config import Settings  # noqa: E402
from cds.store.core import utcnow  # noqa: E402
from cds.store.schema import feedback, served_cards  # noqa: E402
from cds.web import get_store, state  # noqa: E402
from hooks.app import create_app as production_app  # noqa: E402

SERVICE = "l5-radiculopathy-patient-view"
SCENARIO = ROOT / "fhir_fixtures" / "scenarios" / "01-l5-no-mri.json"
MODES = ("off", "lookup")
RULES = ("mri", "conservative-care", "esi", "surgical-referral", "motor-deficit", "red-flags")


def seed(engine: sa.Engine, patients: int, own_hash: str) -> int:
    """Cards and feedback of `patients` other patients, plus 40 of this one whose feedback silences nothing
    (dismissed without a reason). Returns the number of served-card rows written."""
    rng = random.Random(13)
    now = utcnow()
    cards, items = [], []
    hashes = [f"{i:016x}" for i in range(patients)] + [own_hash] * 4
    for h in hashes:
        for _ in range(10):
            rule = rng.choice(RULES)
            uid = str(uuid.uuid4())
            at = now - timedelta(days=rng.randint(0, 60))
            cards.append(
                {
                    "card_uuid": uid,
                    "service": SERVICE,
                    "rule": rule,
                    "indicator": "info",
                    "hook_instance": str(uuid.uuid4()),
                    "patient_hash": h,
                    "created_at": at,
                    "suggestion_uuids": [],
                    "override_reasons": [
                        {"system": "urn:spine-cds:override-reason", "code": "already-addressed"}
                    ],
                    "suggestion_orders": None,
                }
            )
            if h == own_hash or rng.random() < 0.3:
                code = None if h == own_hash else "already-addressed"
                items.append(
                    {
                        "idempotency_key": uuid.uuid4().hex,
                        "service": SERVICE,
                        "card_uuid": uid,
                        "outcome": "overridden",
                        "outcome_at": at,
                        "accepted_suggestions": [],
                        "override_system": code and "urn:spine-cds:override-reason",
                        "override_code": code,
                        "override_display": None,
                        "user_comment": None,
                        "unknown_card": False,
                        "received_at": at,
                    }
                )
    with engine.begin() as conn:
        for start in range(0, len(cards), 5000):
            conn.execute(sa.insert(served_cards), cards[start : start + 5000])
        for start in range(0, len(items), 5000):
            conn.execute(sa.insert(feedback), items[start : start + 5000])
    return len(cards)


def run(database_url: str, rounds: int, calls: int, patients: int) -> tuple[dict[str, list[float]], int]:
    settings = Settings(
        database_url=database_url,
        hash_key="benchmark",
        log_level="WARNING",
        clock=datetime(2026, 1, 15, 15, 0, tzinfo=UTC),
    )
    app = production_app(settings)
    store, engine = get_store(app), state(app).engine
    body = json.loads(SCENARIO.read_text())
    rows = seed(store.engine, patients, engine.hasher(body["context"]["patientId"]))
    suppressor = engine.suppressor
    client = app.test_client()
    expected = None
    timings: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(20):  # warm-up: imports, parsers, connection pool, page cache
        client.post(f"/cds-services/{SERVICE}", json={**body, "hookInstance": str(uuid.uuid4())})
    for r in range(rounds):
        for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:  # rotate the order each round
            engine.suppressor = suppressor if mode == "lookup" else None
            for _ in range(calls):
                payload = {**body, "hookInstance": str(uuid.uuid4())}
                started = time.perf_counter()
                response = client.post(f"/cds-services/{SERVICE}", json=payload)
                timings[mode].append((time.perf_counter() - started) * 1000)
                cards = len(response.get_json()["cards"])
                assert response.status_code == 200 and cards and cards == (expected or cards)
                expected = cards
            store.flush()
    store.close()
    return timings, rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50, help="hook calls per mode per round")
    parser.add_argument("--patients", type=int, default=5000, help="other patients seeded (10 cards each)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        timings, rows = run(url, args.rounds, args.calls, args.patients)
    base = statistics.median(timings["off"])
    label = url.split("://")[0] if args.database_url else "sqlite (temp file)"
    print(
        f"suppression lookup, {SERVICE}, scenario 01, {args.rounds} x {args.calls} calls per mode, {label}, "
        f"{rows} audited cards seeded"
    )
    print(f"{'mode':<8} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p50 vs off':>11} {'p50 delta':>10}")
    for mode in MODES:
        p50 = statistics.median(timings[mode])
        p95 = percentile(timings[mode], 0.95)
        ratio, delta = p50 / base, p50 - base
        print(f"{mode:<8} {len(timings[mode]):>6} {p50:>8.3f} {p95:>8.3f} {ratio:>10.3f}x {delta:>+9.3f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
