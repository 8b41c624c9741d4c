"""Minimum necessary: the prefetch payload of a large chart with the old and the narrowed templates.

    .venv/bin/python -m benchmarks.prefetch_payload [--years 10] [--load-test-mix 3000]

A synthetic chart (benchmarks/prefetch_gen.py: thousands of lab and vital-sign Observations, years of
notes, lab reports, orders, procedures, encounters, plus the EMG/NCS and MRI reports the rules need) is
loaded into the Medplum test server. Every template, the old `Type?patient=` ones and the narrowed ones
the services now declare, is then run as the FHIR fallback (and an EHR filling prefetch) would run it,
following paging links; the table sums the JSON bytes and resources per key. Both sets of results are then
sent as prefetch to the production services, which must return the same cards (nothing the rules need
was narrowed away). Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.hook_requests import transaction
from benchmarks.prefetch_gen import PATIENT, Chart, _bundle, make_prefetch
from cds.config import Settings
from cds.prefetch import render
from hooks.app import create_app, services

OLD_TEMPLATES = {
    "conditions": "Condition?patient={{context.patientId}}",
    "reports": "DiagnosticReport?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "documents": "DocumentReference?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "orders": "ServiceRequest?patient={{context.patientId}}",
    "encounters": "Encounter?patient={{context.patientId}}",
}


def large_chart(years: int = 10, seed: int = 11) -> dict[str, Any]:
    """Ten years of a spine patient with chronic conditions, keyed like the templates.

    Per year: 600 Observations (labs, vital signs, BP panels, smoking status, 5% neurological exams),
    50 lab or imaging reports, 50 notes, 80 orders (mostly labs), 20 procedures, 50 encounters; a problem
    list of 80 conditions. Notes carry their text by url, as large EHRs return them (one a year inline).
    The EMG/NCS and MRI reports and the M54.17 / M47.816 diagnoses come from the load-test chart.
    """
    today = datetime.now(UTC).date()
    chart = Chart(today, seed)
    spine = make_prefetch(300, today, seed)
    for value in spine.values():
        for entry in value["entry"]:
            entry["resource"]["id"] = f"spine-{entry['resource']['id']}"
    spine_reports = [e["resource"] for e in spine["reports"]["entry"][-4:]]  # 2 EMG/NCS, 2 lumbar MRI
    spine_dx = [e["resource"] for e in spine["conditions"]["entry"][-2:]]  # M54.17, M47.816
    notes = []
    for i in range(50 * years):
        note = chart.note()
        if i % 50:
            att = note["content"][0]["attachment"]
            size = len(att["data"])
            note["content"][0]["attachment"] = {
                "contentType": "text/plain",
                "url": f"Binary/{note['id']}",
                "size": size,
            }
        notes.append(note)
    return {
        "conditions": _bundle([chart.condition(i) for i in range(78)] + spine_dx),
        "reports": _bundle([chart.report(i) for i in range(50 * years)] + spine_reports),
        "observations": _bundle([chart.observation(i) for i in range(600 * years)]),
        "documents": _bundle(notes),
        "procedures": _bundle([chart.procedure(i) for i in range(20 * years)]),
        "orders": _bundle([chart.order(i) for i in range(80 * years)]),
        "encounters": _bundle([chart.encounter() for _ in range(50 * years)]),
    }


def run_query(session: requests.Session, base: str, query: str) -> tuple[int, list[dict[str, Any]]]:
    """(bytes on the wire, resources) of a search, every page of it."""
    url: str | None = f"{base}/{query}&_count=1000"
    size, resources = 0, []
    while url:
        response = session.get(url, headers={"Accept": "application/fhir+json"}, timeout=300)
        response.raise_for_status()
        size += len(response.content)
        bundle = response.json()
        resources += [e["resource"] for e in bundle.get("entry", [])]
        url = next((x["url"] for x in bundle.get("link", []) if x.get("relation") == "next"), None)
    return size, resources


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def cards_of(app: Any, service: str, prefetch: dict[str, Any]) -> list[tuple[str, str]]:
    body = {
        "hook": "patient-view",
        "hookInstance": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT},
        "prefetch": prefetch,
    }
    response = app.test_client().post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200, response.get_json()
    return sorted((c["source"]["topic"]["code"], c["indicator"]) for c in response.get_json()["cards"])


def main() -> None:
    from tests.fhir_engine import FhirEngine

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=10, help="years of history in the large chart")
    parser.add_argument(
        "--load-test-mix", type=int, metavar="N", help="instead: the load benchmarks' 300-resource mix at N"
    )
    args = parser.parse_args()
    chart = make_prefetch(args.load_test_mix) if args.load_test_mix else large_chart(args.years)
    count = sum(len(v["entry"]) for v in chart.values())
    path = Path(tempfile.mkdtemp(prefix="payload-")) / "chart.json"
    path.write_text(json.dumps(transaction(chart)))
    settings = Settings(hash_key="bench", log_level="ERROR", clock=datetime.now(UTC))
    service = next(s for s in services(settings) if s.id == "l5-radiculopathy-patient-view")
    context = {"patientId": PATIENT, "userId": "Practitioner/bench"}
    totals = {"old": [0, 0], "new": [0, 0]}
    fetched: dict[str, dict[str, Any]] = {"old": {}, "new": {}}
    rows = []
    with (
        FhirEngine.start(port=0, load=[path], extra_args=["--max-count", "1000"]) as fhir,
        requests.Session() as s,
    ):
        for key, old in OLD_TEMPLATES.items():
            old_size, old_res = run_query(s, fhir.base_url, render(old, context) or "")
            new_size, new_res = run_query(s, fhir.base_url, render(service.prefetch[key], context) or "")
            fetched["old"][key], fetched["new"][key] = bundle(old_res), bundle(new_res)
            totals["old"][0] += old_size
            totals["old"][1] += len(old_res)
            totals["new"][0] += new_size
            totals["new"][1] += len(new_res)
            factor = old_size / new_size if new_size else float("inf")
            rows.append(
                f"| {key} | {len(old_res)} | {old_size / 1024:.0f} | {len(new_res)} | {new_size / 1024:.0f} "
                f"| {factor:.1f}x |"
            )
    app = create_app(settings)
    same = cards_of(app, service.id, fetched["old"]) == cards_of(app, service.id, fetched["new"])
    print(f"Chart: {count} resources ({path.stat().st_size / 1024:.0f} KiB as a batch)\n")
    print("| key | resources before | KiB before | resources after | KiB after | factor |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    (ob, orr), (nb, nr) = totals["old"], totals["new"]
    print(f"| **total** | {orr} | {ob / 1024:.0f} | {nr} | {nb / 1024:.0f} | **{ob / nb:.1f}x** |")
    print(f"\nSame cards from both payloads: {same} ({cards_of(app, service.id, fetched['new'])})")


if __name__ == "__main__":
    main()
