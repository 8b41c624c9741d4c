"""Helpers shared by the benchmark sections: the server under test, measured load runs, tables."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from benchmarks.hook_requests import TOKEN, cold_body, order_sign_request, patient_view_request
from benchmarks.loadgen import Connection, build_request, run_load
from benchmarks.server import Gunicorn

APP = "benchmarks.bench_app:create()"
# Workload -> (service id, request builder); the ids are checked against the registry when a run starts.
SERVICES = {
    "order-sign": ("emg-ncs-necessity-order-sign", order_sign_request),
    "patient-view": ("l5-radiculopathy-patient-view", patient_view_request),
}
DEPLOYED: dict[str, Any] = {"workers": None, "threads": None, "env": {}}  # deploy/gunicorn.conf.py as is


def measured(
    server: Gunicorn, raws: list[bytes], clients: int, args: argparse.Namespace, cold: bool = False
) -> dict[str, Any]:
    """run_load plus the workers' CPU per request and how evenly the workers shared the work."""
    before = server.cpu()
    unique = TOKEN.encode() if cold else None
    summary = run_load(server.port, raws, clients, args.duration, args.warmup, unique=unique).summary()
    after = server.cpu()
    used = [after.get(pid, 0.0) - t for pid, t in before.items()]
    total = sum(used)
    count = max(1, summary["requests"] + int(summary["rps"] * args.warmup))  # the warm-up used CPU too
    summary["cpu_ms"] = round(1000 * total / count, 1)
    summary["split"] = (
        "/".join(f"{100 * u / total:.0f}" for u in sorted(used, reverse=True)) if total else "-"
    )
    return summary


def hook_raw(
    name: str, prefetch: dict[str, Any] | None, fhir: str | None = None, cold: bool = False
) -> tuple[bytes, bytes]:
    """(hook call, baseline call) with the same body; `cold` adds the per-request token (cold_body)."""
    service_id, make = SERVICES[name]
    request = make(prefetch, fhir)
    body = cold_body(request) if cold else json.dumps(request).encode()
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
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def _errors(*summaries: dict[str, Any]) -> str:
    merged: dict[str, int] = {}
    for s in summaries:
        for k, v in s["errors"].items():
            merged[k] = merged.get(k, 0) + v
    return ", ".join(f"{k}:{v}" for k, v in merged.items()) or "0"


_serial = iter(range(1 << 30))


def _sequential(port: int, raw: bytes, count: int, max_s: float, cold: bool = False) -> list[float]:
    """One client, one call after the other; `cold`: a new patient (token) on every call."""
    conn = Connection(port, timeout=120)
    out: list[float] = []
    stop = time.perf_counter() + max_s
    try:
        while len(out) < count and time.perf_counter() < stop:
            request = raw.replace(TOKEN.encode(), b"f%07x" % next(_serial)) if cold else raw
            t0 = time.perf_counter()
            status, body = conn.request(request)
            if status != 200:
                raise RuntimeError(f"status {status}: {body[:300]!r}")
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out


def _load() -> str:
    """Other processes on this machine take CPU from the server; the load average says how much."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
