"""One command for the production benchmarks: `python benchmarks/run.py` (or `make bench`).

The service runs under gunicorn with deploy/gunicorn.conf.py, on 127.0.0.1 only, and the load
generator runs on the same machine. Every section is bounded in time (about 10 minutes in all;
`--quick` about 5) and prints a Markdown table:

  overhead  order-sign and patient-view with a 300-resource prefetch vs a bare JSON endpoint,
            at 1, 8 and 32 concurrent clients
  configs   the same load under other worker/thread settings (why gunicorn.conf.py says what it says)
  scaling   p50 at 100, 1,000 and 10,000 prefetch resources
  fallback  prefetch absent, the test FHIR server answering each query after 100 ms
  memory    RSS per worker before and after 20,000 requests
  profile   in-process: where a hook call's time goes, by pipeline stage and by package
  servers   the next step, measured: the same app under granian instead of gunicorn
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.call_profile import profile  # noqa: E402
from benchmarks.common import (  # noqa: E402
    APP,
    DEPLOYED,
    SERVICES,
    TOKEN,
    Gunicorn,
    _errors,
    _load,
    _sequential,
    hook_raw,
    machine,
    measured,
    table,
)
from benchmarks.fallback import _start_fhir, fallback  # noqa: E402
from benchmarks.loadgen import run_load  # noqa: E402
from benchmarks.prefetch_gen import make_prefetch  # noqa: E402
from benchmarks.servers import servers  # noqa: E402

# Numbers the targets summary reads: (hook, calls, clients) -> overhead cell; resources -> scaling p50s.
RESULTS: dict[str, dict[Any, Any]] = {"overhead": {}, "scaling": {}}


def overhead(args: argparse.Namespace) -> str:
    prefetch = make_prefetch(300)
    rows = []
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], DEPLOYED["env"]) as server:
        for name in SERVICES:
            warm, base = hook_raw(name, prefetch)
            cold, _ = hook_raw(name, prefetch, cold=True)
            for clients in (1, 8, 32):
                bare = measured(server, [base], clients, args)
                for label, raw, is_cold in (("same patient", warm, False), ("new patient", cold, True)):
                    ours = measured(server, [raw], clients, args, cold=is_cold)
                    ratio = ours["rps"] / bare["rps"] if bare["rps"] else float("nan")
                    RESULTS["overhead"][(name, label, clients)] = {**ours, "ratio": ratio}
                    rows.append(
                        [
                            name,
                            label,
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
            "calls",
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


def scaling(args: argparse.Namespace) -> str:
    rows = []
    env = {"CDS_MAX_BODY_BYTES": str(64 * 1024 * 1024)}  # 10,000 resources are ~7 MiB of JSON
    base_per_resource: dict[str, float] = {}
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], env) as server:
        for size in (100, 1000, 10_000):
            prefetch = make_prefetch(size)
            row: list[Any] = [size]
            for name in SERVICES:
                warm, base = hook_raw(name, prefetch)
                cold, _ = hook_raw(name, prefetch, cold=True)
                _sequential(server.port, warm, 2, 30)  # warm-up
                count = max(5, int(args.scale_requests * 100 / size))
                new = statistics.median(_sequential(server.port, cold, count, args.duration * 2, cold=True))
                same = statistics.median(_sequential(server.port, warm, count, args.duration * 2))
                bare = statistics.median(_sequential(server.port, base, count, args.duration))
                per = new / size
                base_per_resource.setdefault(name, per)
                RESULTS["scaling"][(name, size)] = {"new": new, "same": same, "baseline": bare}
                row += [
                    f"{new:.1f} / {same:.1f} / {bare:.1f}",
                    f"{per * 1000:.0f} µs ({per / base_per_resource[name]:.2f}x)",
                ]
            row.insert(1, f"{len(warm) // 1024}")
            rows.append(row)
    return table(
        "Scaling: p50 ms of sequential calls (1 client): new patient / same patient again / baseline",
        [
            "resources",
            "body KiB",
            "order-sign p50 ms",
            "new patient, per resource (vs 100)",
            "patient-view p50 ms",
            "new patient, per resource (vs 100)",
        ],
        rows,
    )


def memory(args: argparse.Namespace) -> str:
    """RSS per worker: after boot, after a warm-up, after half the calls and after all of them.

    Every call is a new patient, so the per-worker caches fill up to their bounds; growth in the second
    half is what a leak would show.
    """
    prefetch = make_prefetch(args.memory_resources)
    raws = [hook_raw(name, prefetch, cold=True)[0] for name in SERVICES]
    token = TOKEN.encode()
    with Gunicorn(APP, DEPLOYED["workers"], DEPLOYED["threads"], DEPLOYED["env"]) as server:
        snapshots = [server.rss()]
        run_load(server.port, raws, 8, duration_s=60, warmup_s=0, max_requests=500, unique=token)
        snapshots.append(server.rss())
        results = []
        for _ in range(2):
            results.append(
                run_load(
                    server.port,
                    raws,
                    8,
                    duration_s=args.memory_max_s / 2,
                    warmup_s=0,
                    max_requests=args.memory_requests // 2,
                    unique=token,
                )
            )
            snapshots.append(server.rss())
    count = sum(r.count for r in results)
    boot, warm, half, end = snapshots
    rows = [
        [pid]
        + [f"{snap.get(pid, 0) / 1024:.1f}" for snap in snapshots]
        + [f"{(end.get(pid, 0) - half.get(pid, 0)) / 1024:+.1f}"]
        for pid in sorted(boot)
    ]
    return table(
        f"Memory: RSS per worker (MiB); {count} calls after a 500-call warm-up, each a new patient, "
        f"{args.memory_resources}-resource prefetch, both hooks, 8 clients, "
        f"errors {_errors(*(r.summary() for r in results))}",
        ["worker pid", "after boot", "after warm-up", "after half", "after all", "growth in second half"],
        rows,
    )


def targets() -> str:
    """Issue 16's targets, read from this run's overhead and scaling sections."""
    cells, scale = RESULTS["overhead"], RESULTS["scaling"]
    rows = []
    if cells:
        low = [c for (_, _, clients), c in cells.items() if clients in (1, 8)]
        ratios = [c["ratio"] for c in low]
        worst = min(cells, key=lambda k: cells[k]["ratio"] if k[2] in (1, 8) else float("inf"))
        rows.append(
            [
                "throughput >= 0.7 x stdlib-json baseline (both hooks, same + new patient, 1 + 8 clients)",
                f"{min(ratios):.2f}-{max(ratios):.2f} (lowest: {', '.join(map(str, worst))})",
                "met" if min(ratios) >= 0.7 else "**missed**",
            ]
        )
        p99 = {k: c["p99"] for k, c in cells.items() if k[2] == 8}
        rows.append(
            [
                "p99 < 50 ms at 8 clients",
                f"{min(p99.values())}-{max(p99.values())} ms",
                "met" if max(p99.values()) < 50 else "**missed**",
            ]
        )
        cpu = [c["cpu_ms"] for c in low]
        rows.append(["(CPU ms per hook call, 1 and 8 clients)", f"{min(cpu)}-{max(cpu)}", ""])
    big = [v["new"] for (_, size), v in scale.items() if size == 10_000]
    if big:
        rows.append(
            [
                "10,000 resources < 250 ms p50, new patient",
                f"{min(big):.0f}-{max(big):.0f} ms",
                "met" if max(big) < 250 else "**missed**",
            ]
        )
    return table("Targets (issue 16), this run", ["target", "measured", ""], rows) if rows else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="overhead,scaling,profile,servers,configs,fallback,memory")
    parser.add_argument("--quick", action="store_true", help="shorter runs, 2,000 memory requests")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per load cell")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--scale-requests", type=int, default=60)
    parser.add_argument("--fallback-requests", type=int, default=20)
    parser.add_argument("--memory-requests", type=int, default=20_000)
    parser.add_argument("--memory-resources", type=int, default=100)
    parser.add_argument("--memory-max-s", type=float, default=300.0)
    parser.add_argument("--profile-calls", type=int, default=200, help="calls per profiled column")
    parser.add_argument("--out", type=Path, help="also write the tables (Markdown) to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.scale_requests = 3.0, 1.0, 20
        args.fallback_requests, args.memory_requests, args.memory_max_s = 8, 2000, 60.0
        args.profile_calls = 60
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
        elif section == "profile":
            out.append(profile(args))
        elif section == "servers":
            out.append(servers(args))
        else:
            parser.error(f"unknown section {section}")
        note = f"({section}: {time.monotonic() - t0:.0f} s, load average after {_load()})\n"
        print(note, flush=True)
        out.append(note)
    summary = targets()
    if summary:
        out.append(summary)
    print(f"total {time.monotonic() - started:.0f} s")
    if args.out:
        args.out.write_text("\n".join(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
