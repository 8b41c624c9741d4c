"""FHIR fallback section: prefetch absent, the test FHIR server answering every query after 100 ms."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import APP, DEPLOYED, SERVICES, Gunicorn, _sequential, hook_raw, table
from benchmarks.hook_requests import transaction
from benchmarks.loadgen import Connection
from benchmarks.prefetch_gen import make_prefetch


def _start_fhir(prefetch: dict[str, Any], default_count: int) -> Any:
    from tests.fhir_engine import FhirEngine

    path = Path(tempfile.mkdtemp(prefix="bench-fhir-")) / "chart.json"
    path.write_text(json.dumps(transaction(prefetch)))
    return FhirEngine.start(
        port=0,
        delay_ms=100,
        load=[path],
        extra_args=["--default-count", str(default_count), "--max-count", "1000"],
    )


def _one_query_ms(base: str, count: int = 10) -> float:
    import requests

    with requests.Session() as session:
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            session.get(
                f"{base}/Condition?patient=bench-pt", headers={"Accept": "application/fhir+json"}, timeout=10
            ).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _cards(port: int, raw: bytes) -> list[tuple[str, str]]:
    conn = Connection(port, timeout=60)
    try:
        _, body = conn.request(raw)
    finally:
        conn.close()
    return sorted(
        (c["source"].get("topic", {}).get("code", ""), c["indicator"]) for c in json.loads(body)["cards"]
    )


def _fhir_ms(server: Gunicorn) -> float:
    """Median time the pipeline spent in the parallel FHIR fetch, from the service's own hook.call logs."""
    values = [
        json.loads(line).get("fhir_ms") for line in server.output().splitlines() if '"hook.call"' in line
    ]
    values = [v for v in values if v]
    return statistics.median(values) if values else float("nan")


def fallback(args: argparse.Namespace) -> str:
    prefetch = make_prefetch(300)
    rows = []
    env = {"CDS_FHIR_ALLOWED_HOSTS": "127.0.0.1", "CDS_LOG_LEVEL": "INFO"}
    for default_count in (20, 1000):
        for name, (service_id, _) in SERVICES.items():
            with (
                _start_fhir(prefetch, default_count) as fhir,
                Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], env) as server,
            ):
                one = _one_query_ms(fhir.base_url)
                hook, _ = hook_raw(name, None, fhir.base_url)
                same = _cards(server.port, hook) == _cards(server.port, hook_raw(name, prefetch)[0])
                _sequential(server.port, hook, 2, 30)
                times = _sequential(server.port, hook, args.fallback_requests, args.duration * 3)
                p50 = statistics.median(times)
                fetch = _fhir_ms(server)
                rows.append(
                    [
                        name,
                        default_count,
                        _keys(service_id),
                        f"{one:.0f}",
                        f"{fetch:.0f} ({fetch / one:.2f}x)",
                        f"{p50:.0f}",
                        f"{max(times):.0f}",
                        f"{p50 / one:.2f}x",
                        "yes" if same else "NO",
                    ]
                )
    return table(
        "FHIR fallback: prefetch absent, every FHIR response delayed 100 ms (1 client)",
        [
            "hook",
            "server page size",
            "queries",
            "one query ms",
            "fetch stage p50 ms",
            "hook p50 ms",
            "hook max ms",
            "hook / one query",
            "same cards as prefetch",
        ],
        rows,
    )


def _keys(service_id: str) -> int:
    """Prefetch keys the service declares (read from the registry, like every other catalogue user)."""
    from cds.config import Settings
    from hooks.app import services

    return len(next(s for s in services(Settings()) if s.id == service_id).prefetch)
