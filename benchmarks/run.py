"""One command for the production benchmarks: `python benchmarks/run.py` (or `make bench`).

The service runs under gunicorn with deploy/gunicorn.conf.py, on 127.0.0.1 only, and the load
generator runs on the same machine. Every section is bounded in time (about 12 minutes in all;
`--quick` about 4) and prints a Markdown table:

  overhead  order-sign and patient-view with a 300-resource prefetch vs a bare JSON endpoint,
            at 1, 8 and 32 concurrent clients
  configs   the same load under other worker/thread settings (why gunicorn.conf.py says what it says)
  scaling   p50 at 100, 1,000 and 10,000 prefetch resources
  fallback  prefetch absent, the test FHIR server answering each query after 100 ms
  memory    RSS per worker before and after 20,000 requests
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import Connection, build_request, run_load  # noqa: E402
from benchmarks.prefetch_gen import (  # noqa: E402
    make_prefetch,
    order_sign_request,
    patient_view_request,
    transaction,
)
from benchmarks.server import Gunicorn  # noqa: E402

APP = "benchmarks.bench_app:create()"
SERVICES = {
    "order-sign": ("emg-ncs-necessity-order-sign", order_sign_request),
    "patient-view": ("l5-radiculopathy-patient-view", patient_view_request),
}
DEPLOYED: dict[str, Any] = {"workers": None, "threads": None, "env": {}}  # deploy/gunicorn.conf.py as is


def measured(server: Gunicorn, raws: list[bytes], clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """run_load plus the workers' CPU per request and how evenly the workers shared the work."""
    before = server.cpu()
    summary = run_load(server.port, raws, clients, args.duration, args.warmup).summary()
    after = server.cpu()
    used = [after.get(pid, 0.0) - t for pid, t in before.items()]
    total = sum(used)
    count = max(1, summary["requests"] + int(summary["rps"] * args.warmup))  # the warm-up used CPU too
    summary["cpu_ms"] = round(1000 * total / count, 1)
    summary["split"] = (
        "/".join(f"{100 * u / total:.0f}" for u in sorted(used, reverse=True)) if total else "-"
    )
    return summary


def hook_raw(name: str, prefetch: dict[str, Any] | None, fhir: str | None = None) -> tuple[bytes, bytes]:
    """(hook call, baseline call) with the same body."""
    service_id, make = SERVICES[name]
    body = json.dumps(make(prefetch, fhir)).encode()
    return build_request(f"/cds-services/{service_id}", body), build_request("/bench/baseline", body)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import os

    mem = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def overhead(args: argparse.Namespace) -> str:
    prefetch = make_prefetch(300)
    rows = []
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], DEPLOYED["env"]) as server:
        for name in SERVICES:
            hook, base = hook_raw(name, prefetch)
            for clients in (1, 8, 32):
                ours = measured(server, [hook], clients, args)
                bare = measured(server, [base], clients, args)
                ratio = ours["rps"] / bare["rps"] if bare["rps"] else float("nan")
                rows.append(
                    [
                        name,
                        clients,
                        ours["rps"],
                        f"{ours['p50']} / {ours['p95']} / {ours['p99']}",
                        ours["cpu_ms"],
                        bare["rps"],
                        f"{bare['p50']} / {bare['p95']} / {bare['p99']}",
                        bare["cpu_ms"],
                        f"{ratio:.2f}",
                        _errors(ours, bare),
                    ]
                )
    return table(
        "Overhead: 300-resource prefetch vs bare JSON endpoint (deployed config)",
        [
            "hook",
            "clients",
            "ours req/s",
            "ours p50/p95/p99 ms",
            "ours CPU ms/req",
            "baseline req/s",
            "baseline p50/p95/p99 ms",
            "baseline CPU ms/req",
            "throughput ratio",
            "errors",
        ],
        rows,
    )


def _errors(*summaries: dict[str, Any]) -> str:
    merged: dict[str, int] = {}
    for s in summaries:
        for k, v in s["errors"].items():
            merged[k] = merged.get(k, 0) + v
    return ", ".join(f"{k}:{v}" for k, v in merged.items()) or "0"


def configs(args: argparse.Namespace, fhir_base: str | None) -> str:
    prefetch = make_prefetch(300)
    hook, _ = hook_raw("order-sign", prefetch)
    fallback, _ = hook_raw("order-sign", None, fhir_base) if fhir_base else (None, None)
    candidates = [
        ("sync", 2, 1, {"GUNICORN_WORKER_CLASS": "sync"}),
        ("sync", 3, 1, {"GUNICORN_WORKER_CLASS": "sync"}),
        ("gthread", 2, 1, {}),
        ("gthread", 2, 2, {}),
        ("gthread", 2, 4, {}),
        ("gthread", 4, 2, {}),
        ("sync", 4, 1, {"GUNICORN_WORKER_CLASS": "sync"}),
        ("gthread, keepalive 0", 2, 2, {"GUNICORN_KEEPALIVE": "0"}),
    ]
    rows = []
    for kind, workers, threads, env in candidates:
        with Gunicorn(APP, workers, threads, {"CDS_FHIR_ALLOWED_HOSTS": "127.0.0.1", **env}) as server:
            cpu = measured(server, [hook], 8, args)
            io = measured(server, [fallback], 8, args) if fallback else None
        rows.append(
            [
                kind,
                workers,
                threads,
                cpu["rps"],
                f"{cpu['p50']} / {cpu['p99']}",
                cpu["cpu_ms"],
                cpu["split"],
                io["rps"] if io else "-",
                f"{io['p50']} / {io['p99']}" if io else "-",
                _errors(cpu, *([io] if io else [])),
            ]
        )
    return table(
        "Worker and thread settings, 8 clients, order-sign",
        [
            "class",
            "workers",
            "threads",
            "prefetch req/s",
            "p50 / p99 ms",
            "CPU ms/req",
            "CPU split across workers %",
            "FHIR fallback req/s",
            "p50 / p99 ms",
            "errors",
        ],
        rows,
    )


def _sequential(port: int, raw: bytes, count: int, max_s: float) -> list[float]:
    conn = Connection(port, timeout=120)
    out: list[float] = []
    stop = time.perf_counter() + max_s
    try:
        while len(out) < count and time.perf_counter() < stop:
            t0 = time.perf_counter()
            status, body = conn.request(raw)
            if status != 200:
                raise RuntimeError(f"status {status}: {body[:300]!r}")
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out


def scaling(args: argparse.Namespace) -> str:
    rows = []
    env = {"CDS_MAX_BODY_BYTES": str(64 * 1024 * 1024)}  # 10,000 resources are ~7 MiB of JSON
    base_per_resource: dict[str, float] = {}
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], env) as server:
        for size in (100, 1000, 10_000):
            prefetch = make_prefetch(size)
            row: list[Any] = [size]
            for name in SERVICES:
                hook, base = hook_raw(name, prefetch)
                _sequential(server.port, hook, 2, 30)  # warm-up
                count = max(5, int(args.scale_requests * 100 / size))
                p50 = statistics.median(_sequential(server.port, hook, count, args.duration * 2))
                bare = statistics.median(_sequential(server.port, base, count, args.duration))
                per = p50 / size
                base_per_resource.setdefault(name, per)
                row += [
                    f"{p50:.1f}",
                    f"{bare:.1f}",
                    f"{per * 1000:.0f} µs ({per / base_per_resource[name]:.2f}x)",
                ]
            row.insert(1, f"{len(hook) // 1024}")
            rows.append(row)
    return table(
        "Scaling: p50 of sequential calls (1 client) by prefetch size",
        [
            "resources",
            "body KiB",
            "order-sign p50 ms",
            "baseline p50 ms",
            "per resource (vs 100)",
            "patient-view p50 ms",
            "baseline p50 ms",
            "per resource (vs 100)",
        ],
        rows,
    )


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
    from hooks import CHART_PREFETCH, L5_PREFETCH

    return len(L5_PREFETCH if service_id.startswith("l5") else CHART_PREFETCH)


def memory(args: argparse.Namespace) -> str:
    prefetch = make_prefetch(args.memory_resources)
    raws = [hook_raw(name, prefetch)[0] for name in SERVICES]
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], DEPLOYED["env"]) as server:
        boot = server.rss()
        run_load(server.port, raws, 8, duration_s=60, warmup_s=0, max_requests=500)
        warm = server.rss()
        result = run_load(
            server.port, raws, 8, duration_s=args.memory_max_s, warmup_s=0, max_requests=args.memory_requests
        )
        after = server.rss()
    rows = [
        [
            pid,
            f"{boot[pid] / 1024:.1f}",
            f"{warm[pid] / 1024:.1f}",
            f"{after.get(pid, 0) / 1024:.1f}",
            f"{(after.get(pid, 0) - warm[pid]) / 1024:+.1f}",
        ]
        for pid in sorted(boot)
    ]
    return table(
        f"Memory: RSS per worker (MiB); {result.count} requests after a 500-request warm-up, "
        f"{args.memory_resources}-resource prefetch, both hooks, 8 clients, "
        f"errors {_errors(result.summary())}",
        ["worker pid", "after boot", "after warm-up", "after run", "growth after warm-up"],
        rows,
    )


def _load() -> str:
    """Other processes on this machine take CPU from the server; the load average says how much."""
    import os

    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="overhead,configs,scaling,fallback,memory")
    parser.add_argument("--quick", action="store_true", help="shorter runs, 2,000 memory requests")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per load cell")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--scale-requests", type=int, default=60)
    parser.add_argument("--fallback-requests", type=int, default=20)
    parser.add_argument("--memory-requests", type=int, default=20_000)
    parser.add_argument("--memory-resources", type=int, default=100)
    parser.add_argument("--memory-max-s", type=float, default=300.0)
    parser.add_argument("--out", type=Path, help="also write the tables (Markdown) to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.scale_requests = 3.0, 1.0, 20
        args.fallback_requests, args.memory_requests, args.memory_max_s = 8, 2000, 60.0
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    header = f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; load average before {_load()}\n"
    print(header, flush=True)
    out = [header]
    started = time.monotonic()
    for section in sections:
        t0 = time.monotonic()
        if section == "overhead":
            out.append(overhead(args))
        elif section == "configs":
            with _start_fhir(make_prefetch(300), 1000) as fhir:
                out.append(configs(args, fhir.base_url))
        elif section == "scaling":
            out.append(scaling(args))
        elif section == "fallback":
            out.append(fallback(args))
        elif section == "memory":
            out.append(memory(args))
        else:
            parser.error(f"unknown section {section}")
        note = f"({section}: {time.monotonic() - t0:.0f} s, load average after {_load()})\n"
        print(note, flush=True)
        out.append(note)
    print(f"total {time.monotonic() - started:.0f} s")
    if args.out:
        args.out.write_text("\n".join(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
