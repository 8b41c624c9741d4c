"""Servers section: the next step after the pipeline, measured: another WSGI server for the same app.

gunicorn as deployed (2 sync workers, deploy/gunicorn.conf.py) against granian (a Rust HTTP server with a
WSGI interface; `pip install -e '.[bench]'`), 2 worker processes with 1 blocking thread each, on the same
app (benchmarks/bench_app.py), for the stdlib-json baseline and order-sign with a 300-resource prefetch.
What a server can change is its own share of a call: HTTP parsing, the WSGI environ, writing the answer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks.common import APP, DEPLOYED, Gunicorn, _errors, hook_raw, measured, table
from benchmarks.prefetch_gen import make_prefetch

GRANIAN = Path(sys.executable).parent / "granian"


def _granian(workers: int) -> list[str]:
    return [
        str(GRANIAN),
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--blocking-threads",
        "1",
        "--no-ws",
        "--factory",
        APP.removesuffix("()"),
    ]


def servers(args: argparse.Namespace) -> str:
    if not GRANIAN.exists() and not shutil.which("granian"):
        return "### Servers\n\ngranian is not installed (`pip install -e '.[bench]'`): section skipped.\n"
    prefetch = make_prefetch(300)
    warm, base = hook_raw("order-sign", prefetch)
    cold, _ = hook_raw("order-sign", prefetch, cold=True)
    calls = [("baseline (stdlib json.loads)", base, False), ("order-sign, same patient", warm, False)]
    calls.append(("order-sign, new patient", cold, True))
    rows = []
    for label, command, workers in (
        ("gunicorn, 2 sync workers (deployed)", None, DEPLOYED["workers"]),
        ("granian, 2 workers x 1 thread", _granian(2), 2),
    ):
        with Gunicorn(APP, workers, DEPLOYED["threads"], DEPLOYED["env"], command=command) as server:
            for call, raw, cold_call in calls:
                for clients in (1, 8):
                    cell = measured(server, [raw], clients, args, cold=cold_call)
                    rows.append(
                        [
                            label,
                            call,
                            clients,
                            cell["rps"],
                            f"{cell['p50']} / {cell['p95']} / {cell['p99']}",
                            cell["cpu_ms"],
                            cell["split"],
                            _errors(cell),
                        ]
                    )
    return table(
        "Servers: the same app under gunicorn and granian, 300-resource prefetch",
        ["server", "call", "clients", "req/s", "p50/p95/p99 ms", "CPU ms/req", "CPU split %", "errors"],
        rows,
    )
