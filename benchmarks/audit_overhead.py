"""How much does auditing served cards add to a hook call? p50/p95 with and without it, in one run.

Three modes, interleaved round by round so machine noise hits them equally:
- `off`: no audit at all (the baseline);
- `queued`: what production does, the rows go to the background writer;
- `inline`: the same rows written synchronously on the request thread (what the queue saves us).

    python benchmarks/audit_overhead.py                       # SQLite file in a temp dir
    python benchmarks/audit_overhead.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hooks.app import create_app as production_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds.config import Settings  # noqa: E402
from cds.feedback import get_store  # noqa: E402

SERVICE = "l5-radiculopathy-patient-view"
SCENARIO = ROOT / "fhir_fixtures" / "scenarios" / "01-l5-no-mri.json"
MODES = ("off", "queued", "inline")


class InlineStore:
    """The real store, but every audit is written before the response is returned."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def record_served(self, *args: Any, **kwargs: Any) -> int:
        return self.store.record_served(*args, **kwargs, sync=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(database_url: str, rounds: int, calls: int) -> dict[str, list[float]]:
    settings = Settings(
        database_url=database_url,
        hash_key="benchmark",
        log_level="WARNING",
        clock=datetime(2026, 1, 15, 15, 0, tzinfo=UTC),
    )
    app = production_app(settings)
    app.extensions["cds"].engine.suppressor = None  # the lookup is measured by suppression_overhead.py
    store = get_store(app)
    stores = {"off": None, "queued": store, "inline": InlineStore(store)}
    body = json.loads(SCENARIO.read_text())
    client = app.test_client()
    timings: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(20):  # warm-up: imports, parsers, connection pool, SQLite page cache
        client.post(f"/cds-services/{SERVICE}", json={**body, "hookInstance": str(uuid.uuid4())})
    for r in range(rounds):
        for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:  # rotate the order each round
            app.extensions["cds"].store = stores[mode]
            for _ in range(calls):
                payload = {**body, "hookInstance": str(uuid.uuid4())}
                started = time.perf_counter()
                response = client.post(f"/cds-services/{SERVICE}", json=payload)
                timings[mode].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and response.get_json()["cards"]
            store.flush()  # the writer's work for this block must not spill into the next mode's timings
    app.extensions["cds"].store = store
    store.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50, help="hook calls per mode per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        timings = run(url, args.rounds, args.calls)
    base = statistics.median(timings["off"])
    label = url.split("://")[0] if args.database_url else "sqlite (temp file)"
    print(f"audit overhead, {SERVICE}, scenario 01, {args.rounds} x {args.calls} calls per mode, {label}")
    print(f"{'mode':<8} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p50 vs off':>11} {'p50 delta':>10}")
    for mode in MODES:
        p50 = statistics.median(timings[mode])
        p95 = percentile(timings[mode], 0.95)
        ratio, delta = p50 / base, p50 - base
        print(f"{mode:<8} {len(timings[mode]):>6} {p50:>8.3f} {p95:>8.3f} {ratio:>10.3f}x {delta:>+9.3f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
