"""Precision/recall and latency of the EMG impression reader on the labelled corpus.

Run from the repository root: ``python benchmarks/emg_nlp_precision.py`` (add ``--backend medspacy`` or
``--backend all`` to compare with medspaCy's ConText running the same rules, and with medspaCy's own packaged
rules, when medspacy is installed).

Why a script and not only the test: the test gates precision/recall; this prints the numbers a reviewer needs
to judge the engine choice (per-text latency percentiles and one-off load time) and lists every mismatch.
Load time is import + build in a fresh interpreter. Laterality and chronicity accuracy are computed on the
texts labelled positive (the only ones where they are
reported on a card). Ids starting with ``h-`` are the held-out batch written after the code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "tests" / "data" / "emg_corpus.jsonl"


@dataclass
class Score:
    """Confusion counts and qualifier accuracy for one backend on one subset."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    lat_ok: int = 0
    chron_ok: int = 0
    positives: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_corpus(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score(rows: list[dict[str, Any]], findings: dict[str, Any]) -> Score:
    s = Score()
    for row in rows:
        exp, got = row["expected"], findings[row["id"]]
        if exp["positive"]:
            s.positives += 1
            s.lat_ok += got.laterality == exp["laterality"]
            s.chron_ok += got.chronicity == exp["chronicity"]
            if got.positive:
                s.tp += 1
            else:
                s.fn += 1
                s.mismatches.append(f"FN {row['id']}: {got.matched_text[:100]!r}")
            if got.positive and got.laterality != exp["laterality"]:
                s.mismatches.append(f"laterality {row['id']}: got {got.laterality}, want {exp['laterality']}")
            if got.positive and got.chronicity != exp["chronicity"]:
                s.mismatches.append(f"chronicity {row['id']}: got {got.chronicity}, want {exp['chronicity']}")
        elif got.positive:
            s.fp += 1
            s.mismatches.append(f"FP {row['id']}: {got.matched_text[:100]!r}")
        else:
            s.tn += 1
    return s


_LOAD_PROBE = """
import sys, time
t0 = time.perf_counter()
from benchmarks.medspacy_context import build_analyzer
build_analyzer(sys.argv[1])
print(time.perf_counter() - t0)
"""


def fresh_load_seconds(backend: str) -> float:
    """Import + build time in a new interpreter: what start-up really pays (in-process hides imports)."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, backend], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run_backend(
    backend: str, rows: list[dict[str, Any]], repeat: int
) -> tuple[float, dict[str, Any], list[float]]:
    """Load (timed in a fresh process), then time every text ``repeat`` times after one warm-up pass."""
    from benchmarks.medspacy_context import build_analyzer

    load_s = fresh_load_seconds(backend)
    analyzer = build_analyzer(backend)
    findings = {
        r["id"]: analyzer.analyze(r["text"], r["content_type"], is_impression=r["is_impression"])
        for r in rows
    }
    per_text_ms: list[float] = []
    for r in rows:
        t = time.perf_counter()
        for _ in range(repeat):
            analyzer.analyze(r["text"], r["content_type"], is_impression=r["is_impression"])
        per_text_ms.append((time.perf_counter() - t) * 1000 / repeat)
    return load_s, findings, per_text_ms


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--backend", choices=["regex", "medspacy", "medspacy-default", "all"], default="regex"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per text (after one warm-up pass)")
    parser.add_argument("--quiet", action="store_true", help="do not list mismatches")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    rows = load_corpus(args.corpus)
    backends = ["regex", "medspacy", "medspacy-default"] if args.backend == "all" else [args.backend]
    if importlib.util.find_spec("medspacy") is None and any(b.startswith("medspacy") for b in backends):
        print("medspacy is not installed; skipping the medspacy backends", file=sys.stderr)
        backends = [b for b in backends if not b.startswith("medspacy")]

    header = (
        f"{'backend':<16} {'subset':<9} {'n':>4} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} "
        f"{'prec':>6} {'recall':>6} "
        f"{'lat acc':>7} {'chr acc':>7} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'load s':>7}"
    )
    print(
        f"corpus: {args.corpus} ({len(rows)} texts, {sum(r['expected']['positive'] for r in rows)} positive)"
    )
    print(header)
    print("-" * len(header))
    notes: list[str] = []
    for backend in backends:
        load_s, findings, times = run_backend(backend, rows, args.repeat)
        by_id = dict(zip([r["id"] for r in rows], times, strict=True))
        subsets = {
            "all": rows,
            "held-out": [r for r in rows if r["id"].startswith("h-")],
            "reports": [r for r in rows if not r["is_impression"]],
        }
        for name, subset in subsets.items():
            if not subset:
                continue
            s = score(subset, findings)
            ms = [by_id[r["id"]] for r in subset]
            print(
                f"{backend:<16} {name:<9} {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.tn:>4} "
                f"{s.precision:>6.3f} {s.recall:>6.3f} "
                f"{s.lat_ok / max(1, s.positives):>7.3f} {s.chron_ok / max(1, s.positives):>7.3f} "
                f"{pct(ms, 0.5):>7.2f} {pct(ms, 0.95):>7.2f} {max(ms):>7.2f} {load_s:>7.2f}"
            )
            if name == "all":
                notes.extend(f"[{backend}] {m}" for m in s.mismatches)
        print(f"{backend:<16} mean ms/text {statistics.fmean(times):.2f}")
    if notes and not args.quiet:
        print("\nmismatches:")
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
