"""Golden cards: every fixture the project has, replayed through the whole HTTP path, cards recorded as JSON.

Issue 16 made the request path faster (decoder, pre-filter, caches); a speed-up must never change a card.
`tests/data/golden_cards.jsonl` holds the full card JSON (uuids aside) that the service answered for:

- every scenario of `fhir_fixtures/scenarios/` (with the clock of `expected.yaml`);
- every demo story of `fhir_fixtures/demo/` sent to every service (the chart as prefetch, the story's draft
  orders in draftOrders, its PDF reports inline, the clock on a fixed day);
- every case of the real-chart corpus `fhir_fixtures/charts/` (sent as `benchmarks/chart_corpus.py` sends it).

It was recorded on main before the optimisations (commit named in the file's first line) and is compared by
`tests/test_golden_cards.py`. A change that is *meant* to change cards (clinical logic, card text)
re-records it:

    .venv/bin/python -m tests.golden_cards --record

and the diff of the data file is then part of the review: every changed card must be intended. To record with
the code of another commit (main before merging a speed-up: the cards it gives are the reference), use
`--record-from main`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.chart_corpus import build_request as corpus_request  # noqa: E402
from benchmarks.chart_corpus import load_cases  # noqa: E402
from cds.config import Settings  # noqa: E402
from demo.stories import Story, load_stories, pdf_binaries  # noqa: E402
from hooks.app import create_app  # noqa: E402

DATA = ROOT / "tests" / "data" / "golden_cards.jsonl"
SCENARIOS = ROOT / "fhir_fixtures" / "scenarios"
DEMO_TODAY = date(2026, 1, 15)  # the demo stories' dates are relative: any fixed day makes them replayable
SCENARIO_NOW = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)


def without_uuids(value: Any) -> Any:
    """The card JSON with every `uuid` member removed (card and suggestion uuids are new on every call)."""
    if isinstance(value, dict):
        return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value


@contextmanager
def service_app() -> Iterator[Any]:
    """The production app on a throw-away SQLite store; the clock is set per case."""
    with tempfile.TemporaryDirectory(prefix="golden-cards-") as tmp:
        settings = Settings(
            log_level="ERROR",
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/golden.db",
            hash_key="golden",
        )
        app = create_app(settings)
        try:
            yield app, settings
        finally:
            store = app.extensions["cds"].store
            if store is not None:
                store.close()


def _inline_pdfs(resource: dict[str, Any], binaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A report whose PDF sits in a Binary gets the PDF as inline data (no FHIR server in this replay)."""

    def inline(att: Any) -> Any:
        url = att.get("url") if isinstance(att, dict) else None
        if isinstance(url, str) and url.startswith("Binary/") and url[7:] in binaries:
            binary = binaries[url[7:]]
            return {k: v for k, v in att.items() if k != "url"} | {
                "contentType": binary["contentType"],
                "data": binary["data"],
            }
        return att

    out = dict(resource)
    if isinstance(out.get("presentedForm"), list):
        out["presentedForm"] = [inline(a) for a in out["presentedForm"]]
    if isinstance(out.get("content"), list):
        out["content"] = [
            {**c, "attachment": inline(c.get("attachment"))} if isinstance(c, dict) else c
            for c in out["content"]
        ]
    return out


def demo_request(story: Story, service: Any) -> dict[str, Any]:
    """The story's chart as prefetch for `service`, its draft orders in draftOrders (order hooks)."""
    binaries = {b["id"]: b for b in pdf_binaries(list(story.template))}
    chart = [_inline_pdfs(r, binaries) for r in story.chart(DEMO_TODAY) if r["resourceType"] != "Binary"]
    context = {"userId": "Practitioner/demo-clinician", "patientId": story.patient_id}
    case = {"chart": chart, "context": context}
    request = corpus_request({**case, "service": service.id}, dict(service.prefetch))
    if service.hook != "patient-view":
        drafts = [
            r for r in chart if r["resourceType"] == "ServiceRequest" and r.get("status") == "draft"
        ] + story.orders_being_written(DEMO_TODAY)
        request["context"]["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
        if service.hook == "order-select":
            request["context"]["selections"] = [f"ServiceRequest/{d['id']}" for d in drafts]
    return request


def cases() -> Iterator[tuple[str, str, datetime, dict[str, Any]]]:
    """(case name, service id, clock, hook request) for every fixture, in a stable order."""
    for case in yaml.safe_load((SCENARIOS / "expected.yaml").read_text(encoding="utf-8")):
        body = json.loads((SCENARIOS / case["file"]).read_text(encoding="utf-8"))
        yield f"scenario:{case['file']}", case["service"], SCENARIO_NOW, body
    with service_app() as (app, _):
        services = list(app.extensions["cds"].registry)
    clock = datetime.combine(DEMO_TODAY, datetime.min.time(), UTC).replace(hour=15)
    for story in load_stories():
        for service in services:
            yield f"demo:{story.key}:{service.id}", service.id, clock, demo_request(story, service)
    by_id = {s.id: s for s in services}
    for path, case in load_cases():
        service = by_id[case["service"]]
        name = f"chart:{path.relative_to(ROOT / 'fhir_fixtures' / 'charts')}"
        clock = datetime.fromisoformat(case["now"])
        yield name, service.id, clock, corpus_request(case, dict(service.prefetch))


def replay(again: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Case name -> {"status", "cards"} (cards without uuids) for every case of `cases()`.

    `again`, if given, receives the answer to the same call sent a second time right after the first: the
    same chart again (patient-view, then order-select, then order-sign) is served from the per-worker caches.
    """
    out: dict[str, dict[str, Any]] = {}
    with service_app() as (app, settings):
        client = app.test_client()
        for name, service_id, clock, body in cases():
            settings.clock = clock
            for target in (out, again) if again is not None else (out,):
                call = {**body, "hookInstance": str(uuid.uuid4())}
                response = client.post(
                    f"/cds-services/{service_id}", data=json.dumps(call), content_type="application/json"
                )
                payload = response.get_json(silent=True) or {}
                cards = without_uuids(payload.get("cards", []))
                target[name] = {"status": response.status_code, "cards": cards}
    return out


def load() -> tuple[str, dict[str, dict[str, Any]]]:
    """(header, recorded cases) from the data file."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])["recorded_on"]
    recorded = {}
    for line in lines[1:]:
        item = json.loads(line)
        recorded[item.pop("case")] = item
    return header, recorded


def record() -> int:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    results = replay()
    lines = [json.dumps({"recorded_on": f"commit {commit or 'unknown'}", "cases": len(results)})]
    lines += [json.dumps({"case": name, **item}, sort_keys=True) for name, item in results.items()]
    DATA.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"recorded {len(results)} cases to {DATA.relative_to(ROOT)}")
    return 0


def record_from(rev: str) -> int:
    """Record with the service code of another commit (e.g. main before a merge): a temporary git worktree of
    `rev` runs this recorder, and its data file is copied here. Python finds the worktree's packages first."""
    with tempfile.TemporaryDirectory(prefix="golden-cards-rev-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
        try:
            (tree / "tests" / "data").mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(__file__), tree / "tests" / "golden_cards.py")
            code = "import sys, tests.golden_cards as g; sys.exit(g.record())"
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, check=True)
            shutil.copy(tree / "tests" / "data" / DATA.name, DATA)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    print(f"recorded with the code of {rev}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="replay every fixture and write the data file")
    parser.add_argument("--record-from", metavar="REV", help="record with the code of commit REV (e.g. main)")
    args = parser.parse_args(argv)
    if args.record_from:
        return record_from(args.record_from)
    if args.record:
        return record()
    _, recorded = load()
    current = replay()
    changed = sorted(n for n in recorded.keys() | current.keys() if recorded.get(n) != current.get(n))
    print(f"{len(current)} cases, {len(changed)} differ from the recording")
    for name in changed:
        print(f"  {name}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
