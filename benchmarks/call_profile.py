"""Profile section: where a hook call's CPU goes, stage by stage and package by package (issue 16).

In one process, as a gunicorn worker runs it (the production app, the start-up objects frozen out of the
GC's reach as deploy/gunicorn.conf.py does), calls go through Flask's test client with the 300-resource
prefetch of the overhead section. Two views of the same calls:

- stages: wall time inside each stage of the pipeline (timers around the stage functions), the cyclic GC
  (gc.callbacks) and the rest (Flask, werkzeug and its test client, the view);
- packages: cProfile self time summed by the package a function lives in (fhir_core/fhir.resources:
  validation; hooks: the rules; re: regular expressions, most of them the rules' text reading; ...).

The test client is not gunicorn: its own request building replaces gunicorn's HTTP parsing, so "the rest"
is not the WSGI server's share. The baseline row (stdlib `json.loads` plus the same Flask stack) gives that.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import SERVICES, table
from benchmarks.hook_requests import TOKEN, cold_body
from benchmarks.prefetch_gen import make_prefetch

# (stage label, module, attribute path): wrapped before the app is built, so bound methods see the timers.
# Times are exclusive: a stage's time excludes the stages it calls (the parse loop excludes the pre-filter).
STAGES = [
    ("body read, NUL check, GC pause", "cds.routes", "json_body"),
    ("decode (msgspec)", "cds.web", "decode"),
    ("request validation", "cds.pipeline", "parse_hook_request"),
    ("prefetch classification", "cds.pipeline", "Engine.gather"),
    ("attachments", "cds.pipeline", "Engine.read_attachments"),
    ("pre-filter (raw JSON)", "hooks.evidence.prefilter", "Prefilter.relevant"),
    ("model cache keys", "cds.parse", "ModelCache.key"),
    ("validation (fhir.resources)", "cds.parse", "parse_one"),
    ("parse loop (dedupe, patient check)", "cds.pipeline", "Engine.build_input"),
    ("rules and cards", "hooks.emg_necessity.rules", "EmgNecessityRules.evaluate"),
    ("rules and cards", "hooks.l5_radiculopathy.rules", "L5Rules.patient_view"),
    ("suppression lookup (SQLite, thread)", "cds.suppression", "Suppressor.withhold"),
    ("response JSON", "cds.pipeline", "Response.to_json"),
    ("log line, metrics", "cds.pipeline", "log"),
    ("log line, metrics", "cds.metrics", "observe_hook"),
    ("audit rows (queued)", "cds.routes", "_audit"),
    ("engine, other (uuids, checks)", "cds.pipeline", "Engine.evaluate"),
]
PACKAGES = [
    ("fhir_core", "validation (fhir_core, fhir.resources)"),
    ("fhir/resources", "validation (fhir_core, fhir.resources)"),
    ("pydantic", "pydantic (FHIR models and cards)"),
    ("/hooks/", "rules (hooks/, Python)"),
    ("msgspec", "decode"),
    ("/json/", "decode"),
    ("/cds/", "engine (cds/, Python)"),
    ("sqlalchemy", "store (SQLAlchemy, SQLite)"),
    ("sqlite", "store (SQLAlchemy, SQLite)"),
    ("werkzeug", "Flask, werkzeug, test client"),
    ("flask", "Flask, werkzeug, test client"),
    ("/re/", "regular expressions"),
    ("threading", "thread hand-offs (audit, suppression)"),
    ("queue", "thread hand-offs (audit, suppression)"),
]


def _resolve(module: str, path: str) -> tuple[Any, str]:
    owner: Any = __import__(module, fromlist=["_"])
    parts = path.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1]


_TIMING = [False]  # the timers run only in the timed pass (not while cProfile measures)


@contextmanager
def _timers(spent: Counter[str]) -> Iterator[None]:
    """Wrap every stage function; `spent[label]` sums its exclusive wall time."""
    originals: list[tuple[Any, str, Any]] = []
    stack: list[list[float]] = []  # per active stage: [start, time spent in the stages it called]
    for label, module, path in STAGES:
        owner, name = _resolve(module, path)
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        originals.append((owner, name, original))
        func = original.__func__ if isinstance(original, staticmethod) else original

        def timed(*args: Any, _f: Callable[..., Any] = func, _label: str = label, **kwargs: Any) -> Any:
            if not _TIMING[0]:
                return _f(*args, **kwargs)
            frame = [time.perf_counter(), 0.0]
            stack.append(frame)
            try:
                return _f(*args, **kwargs)
            finally:
                stack.pop()
                elapsed = time.perf_counter() - frame[0]
                spent[_label] += elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed

        setattr(owner, name, staticmethod(timed) if isinstance(original, staticmethod) else timed)
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def _app() -> tuple[Any, Any]:
    from benchmarks.bench_app import create
    from cds.config import Settings

    tmp = tempfile.mkdtemp(prefix="bench-profile-")
    settings = Settings(
        log_level="INFO",  # the deployed level: the hook.call line is part of the cost
        data_dir=Path(tmp),
        database_url=f"sqlite:///{tmp}/audit.db",
        hash_key="bench",
        auth="off",
    )
    app = create(settings)
    gc.collect()
    gc.freeze()  # as deploy/gunicorn.conf.py's post_worker_init
    return app, app.test_client()


def _calls(client: Any, url: str, body: bytes, count: int, cold: bool, start: int) -> None:
    for i in range(count):
        data = body.replace(TOKEN.encode(), b"p%07x" % (start + i)) if cold else body
        response = client.post(url, data=data, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.data[:300]!r}")


def profile(args: argparse.Namespace) -> str:
    calls = max(50, int(args.profile_calls))
    prefetch = make_prefetch(300)
    spent: Counter[str] = Counter()
    gc_time = [0.0, 0.0]  # total, start of the running collection

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    columns: list[tuple[str, float, float, dict[str, float]]] = []  # (title, wall, cpu, stage -> ms)
    packages: list[tuple[str, dict[str, float]]] = []
    with _timers(spent), contextlib.redirect_stdout(io.StringIO()):  # the JSON log lines
        app, client = _app()
        gc.callbacks.append(on_gc)
        try:
            for name, (service_id, make) in SERVICES.items():
                request = make(prefetch, None)
                url = f"/cds-services/{service_id}"
                for label, cold in (("same patient", False), ("new patient", True)):
                    body = cold_body(request) if cold else json.dumps(request).encode()
                    _calls(client, url, body, 20, cold, 0)  # warm-up: caches, first-call costs
                    profiler = cProfile.Profile()
                    profiler.enable()
                    _calls(client, url, body, calls, cold, 1000)
                    profiler.disable()
                    packages.append((f"{name}, {label}", _by_package(profiler)))
                    # Timers from a second, unprofiled run: cProfile inflates Python code.
                    spent.clear()
                    gc_time[0] = 0.0
                    _TIMING[0] = True
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    _calls(client, url, body, calls, cold, 100_000)
                    cpu = (time.process_time() - cpu0) * 1000 / calls
                    wall = (time.perf_counter() - wall0) * 1000 / calls
                    _TIMING[0] = False
                    stages = {k: v * 1000 / calls for k, v in spent.items()}
                    stages[_REST] = wall - sum(stages.values())
                    stages[_GC] = gc_time[0] * 1000 / calls
                    columns.append((f"{name}, {label}", wall, cpu, stages))
            baseline = _baseline(client, prefetch)
        finally:
            gc.callbacks.remove(on_gc)
            state = app.extensions["cds"]
            if state.store is not None:
                state.store.close()
    labels = [*dict.fromkeys(s[0] for s in STAGES), _REST, _GC]
    rows = [
        [label]
        + [f"{st.get(label, 0.0):.2f} ({100 * st.get(label, 0.0) / wall:.0f}%)" for _, wall, _, st in columns]
        for label in labels
    ]
    rows.append(["**total: wall / CPU ms per call**"] + [f"**{w:.1f} / {c:.1f}**" for _, w, c, _ in columns])
    rows.append(["baseline (stdlib json.loads, same Flask stack)"] + [f"{baseline:.2f}"] * len(columns))
    out = table(
        f"Profile: where a hook call's time goes (ms per call, in-process, {calls} calls per column)",
        ["stage"] + [title for title, *_ in columns],
        rows,
    )
    groups = sorted(
        {g for _, p in packages for g in p}, key=lambda g: -sum(p.get(g, 0.0) for _, p in packages)
    )
    out += "\n" + table(
        "Profile: CPU self time by package (cProfile of the same calls, % of each column)",
        ["package"] + [title for title, _ in packages],
        [[g] + [f"{p.get(g, 0.0):.0f}%" for _, p in packages] for g in groups],
    )
    return out


_REST = "Flask, werkzeug test client, view (the rest)"
_GC = "of which cyclic GC (inside the stages above)"


def _group(filename: str, func: str) -> str | None:
    if "re.Pattern" in func or filename.endswith(("/re/__init__.py", "/re/_compiler.py")):
        return "regular expressions"
    return next((group for needle, group in PACKAGES if needle in filename), None)


def _by_package(profiler: cProfile.Profile) -> dict[str, float]:
    """Self time by package; a builtin's (dict.get, str.join...) goes to the package that calls it."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    totals: Counter[str] = Counter()
    for (filename, _line, func), (_cc, _nc, tottime, _ct, callers) in stats.items():
        group = _group(filename, func)
        if group is None and filename == "~" and callers:
            for (cfile, _cline, cfunc), caller_stats in callers.items():
                totals[_group(cfile, cfunc) or "other (stdlib)"] += caller_stats[2]
            continue
        totals[group or "other (stdlib)"] += tottime
    whole = sum(totals.values()) or 1.0
    return {g: 100 * t / whole for g, t in totals.items()}


def _baseline(client: Any, prefetch: dict[str, Any]) -> float:
    """The bench app's baseline route (benchmarks/bench_app.py), through the same test client."""
    body = json.dumps(SERVICES["order-sign"][1](prefetch, None)).encode()
    _calls(client, "/bench/baseline", body, 20, False, 0)
    started = time.perf_counter()
    _calls(client, "/bench/baseline", body, 200, False, 0)
    return (time.perf_counter() - started) * 1000 / 200
