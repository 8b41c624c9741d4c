"""Precision and recall per rule and per clinical concept on the real-chart corpus (issue 11).

Run from the repository root: ``python benchmarks/chart_corpus.py`` (``--batch batch1``, ``--concept
red_flags``, ``--show`` to print every miss with the cards that were returned, ``--json`` for machines).

The corpus (``fhir_fixtures/charts/<batch>/<concept>/<case>.json``) was written by independent clinical
authors from the clinical brief and the issue, without reading the code; the case format is described in
``fhir_fixtures/charts/README.md``. Each case is a patient's chart, a hook context and the complete set of
rule ids (card ``source.topic.code``) a correct service returns. The harness sends the chart the way an EHR
would: as prefetch, each resource in the search Bundle of the prefetch key that asks for its type (so the
corpus does not depend on our key names), through the real Flask app with the clock set to the case's
``now``. A case marked ``clear: false`` is reported but not scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "fhir_fixtures" / "charts"
_HOOKS = {
    "l5-radiculopathy-patient-view": "patient-view",
    "l5-radiculopathy-order-select": "order-select",
    "emg-ncs-necessity-order-select": "order-select",
    "emg-ncs-necessity-order-sign": "order-sign",
}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class CaseResult:
    case: dict[str, Any]
    path: Path
    status: int
    fired: list[str]
    cards: list[dict[str, Any]]
    detail_failures: list[str] = field(default_factory=list)

    @property
    def expected(self) -> set[str]:
        return set(self.case["expected"]["rules"])

    @property
    def rules_ok(self) -> bool:
        return self.status == 200 and set(self.fired) == self.expected

    @property
    def ok(self) -> bool:
        return self.rules_ok and not self.detail_failures


def load_cases(batch: str | None = None, concept: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    root = CORPUS / batch if batch else CORPUS
    out = []
    for path in sorted(root.rglob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if concept and case.get("concept") != concept:
            continue
        out.append((path, case))
    return out


def _template_type(template: str) -> str:
    return template.split("?", 1)[0].split("/", 1)[0]


def build_request(case: dict[str, Any], prefetch_templates: dict[str, str]) -> dict[str, Any]:
    """The hook call an EHR would send for this chart: prefetch keyed the way the service asks."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in case.get("chart") or []:
        by_type[resource.get("resourceType", "")].append(resource)
    raw = case.get("prefetch_raw") or {}
    patient_id = case["context"]["patientId"]
    prefetch: dict[str, Any] = {}
    for key, template in prefetch_templates.items():
        rtype = _template_type(template)
        if rtype in raw:
            prefetch[key] = raw[rtype]
        elif "?" not in template:  # a read such as Patient/{{context.patientId}}
            match = [r for r in by_type.get(rtype, []) if r.get("id") == patient_id]
            prefetch[key] = match[0] if match else None
        else:
            entries = by_type.get(rtype, [])
            prefetch[key] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(entries),
                "entry": [
                    {"fullUrl": f"https://ehr.example.org/fhir/{rtype}/{r.get('id', i)}", "resource": r}
                    for i, r in enumerate(entries)
                ],
            }
    return {
        "hook": _HOOKS[case["service"]],
        "hookInstance": str(uuid.uuid4()),
        "context": case["context"],
        "prefetch": prefetch,
    }


def _suggested_codes(card: dict[str, Any]) -> set[str]:
    codes: set[str] = set()
    for suggestion in card.get("suggestions") or []:
        for action in suggestion.get("actions") or []:
            resource = action.get("resource") or {}
            if action.get("type") == "create":
                codes |= {c.get("code") for c in (resource.get("code") or {}).get("coding") or []}
            elif action.get("type") == "update":
                for reason in resource.get("reasonCode") or []:
                    codes |= {c.get("code") for c in reason.get("coding") or []}
    return {c for c in codes if c}


def _check_cards(case: dict[str, Any], cards: list[dict[str, Any]]) -> list[str]:
    failures = []
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for card in cards:
        by_rule[((card.get("source") or {}).get("topic") or {}).get("code", "")].append(card)
    for want in case["expected"].get("cards") or []:
        got = by_rule.get(want["rule"]) or []
        if not got:
            continue  # already a rule-level miss
        card = got[0]
        if want.get("indicator") and card.get("indicator") != want["indicator"]:
            failures.append(f"{want['rule']}: indicator {card.get('indicator')} != {want['indicator']}")
        codes = set().union(*(_suggested_codes(c) for c in got))
        missing = set(want.get("suggested_codes_include") or []) - codes
        extra = set(want.get("suggested_codes_exclude") or []) & codes
        if missing:
            failures.append(f"{want['rule']}: suggestions lack {sorted(missing)}")
        if extra:
            failures.append(f"{want['rule']}: suggestions offer {sorted(extra)}")
    return failures


class Runner:
    """One app for the whole run; the clock is moved to each case's `now`."""

    def __init__(self) -> None:
        from cds.config import Settings

        try:
            from hooks.app import create_app
        except ImportError:  # before the composition root existed (the first, pre-fix score)
            from cds.app import create_app

        self._tmp = tempfile.TemporaryDirectory(prefix="chart-corpus-")
        self.settings = Settings(
            log_level="ERROR",
            data_dir=Path(self._tmp.name),
            # A file, not "sqlite://": the audit writer's thread opens its own connection to it.
            database_url=f"sqlite:///{self._tmp.name}/corpus.db",
            hash_key="corpus",
        )
        self.app = create_app(self.settings)
        self.client = self.app.test_client()
        self.registry = self.app.extensions["cds"].registry

    def run(self, path: Path, case: dict[str, Any]) -> CaseResult:
        service = self.registry.get(case["service"])
        if service is None:
            raise SystemExit(f"{path}: unknown service {case['service']}")
        self.settings.clock = datetime.fromisoformat(case["now"])
        request = build_request(case, dict(service.prefetch))
        response = self.client.post(f"/cds-services/{service.id}", json=request)
        body = response.get_json(silent=True) or {}
        cards = body.get("cards") or []
        fired = [((c.get("source") or {}).get("topic") or {}).get("code", "?") for c in cards]
        result = CaseResult(case, path, response.status_code, fired, cards)
        if response.status_code == 200:
            result.detail_failures = _check_cards(case, cards)
        return result

    def close(self) -> None:
        state = self.app.extensions["cds"]
        if state.store is not None:
            state.store.close()
        self._tmp.cleanup()


def score(results: list[CaseResult]) -> dict[str, Any]:
    per_rule: dict[str, Counts] = defaultdict(Counts)
    per_concept: dict[str, Counts] = defaultdict(Counts)
    concept_cases: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if not r.case.get("clear", True):
            continue
        fired = set(r.fired) if r.status == 200 else set()
        concept = r.case.get("concept", "?")
        concept_cases[concept][1] += 1
        concept_cases[concept][0] += int(r.ok)
        for rule in fired | r.expected:
            bucket = "tp" if rule in fired and rule in r.expected else "fp" if rule in fired else "fn"
            for counts in (per_rule[rule], per_concept[concept]):
                setattr(counts, bucket, getattr(counts, bucket) + 1)
    clear = [r for r in results if r.case.get("clear", True)]
    return {
        "cases": len(results),
        "clear": len(clear),
        "rules_right": sum(r.rules_ok for r in clear),
        "fully_right": sum(r.ok for r in clear),
        "non_200": sum(r.status != 200 for r in clear),
        "per_rule": per_rule,
        "per_concept": per_concept,
        "concept_cases": concept_cases,
    }


def _table(title: str, rows: dict[str, Counts]) -> list[str]:
    lines = [f"{title:<22} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>10} {'recall':>8}"]
    for name in sorted(rows):
        c = rows[name]
        lines.append(f"{name:<22} {c.tp:>4} {c.fp:>4} {c.fn:>4} {c.precision:>10.3f} {c.recall:>8.3f}")
    return lines


def report(results: list[CaseResult], show: bool) -> str:
    s = score(results)
    lines = [
        f"cases: {s['cases']} ({s['clear']} clear); rules right on {s['rules_right']}/{s['clear']}, "
        f"rules and card details right on {s['fully_right']}/{s['clear']}; non-200: {s['non_200']}",
        "",
        *_table("rule", s["per_rule"]),
        "",
        *_table("concept", s["per_concept"]),
        "",
        "cases fully right per concept: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(s["concept_cases"].items())),
    ]
    misses = [r for r in results if not r.ok]
    if misses:
        lines += ["", f"misses ({len(misses)}):"]
        for r in misses:
            flag = "" if r.case.get("clear", True) else " [unclear, not scored]"
            rel = r.path.relative_to(CORPUS)
            lines.append(
                f"- {rel}{flag}: expected {sorted(r.expected)}, got "
                f"{sorted(r.fired) if r.status == 200 else f'HTTP {r.status}'}"
                + (f"; {'; '.join(r.detail_failures)}" if r.detail_failures else "")
            )
            if show:
                lines.append(f"    note: {r.case.get('author_note', '')}")
                for card in r.cards:
                    lines.append(f"    [{card.get('indicator')}] {card.get('summary')}")
    return "\n".join(lines)


def run_corpus(batch: str | None = None, concept: str | None = None) -> list[CaseResult]:
    runner = Runner()
    try:
        return [runner.run(path, case) for path, case in load_cases(batch, concept)]
    finally:
        runner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", help="only this batch folder (e.g. batch1)")
    parser.add_argument("--concept", help="only this concept")
    parser.add_argument("--show", action="store_true", help="print the author's note and returned cards")
    parser.add_argument("--json", action="store_true", help="machine-readable scores")
    args = parser.parse_args(argv)
    results = run_corpus(args.batch, args.concept)
    if args.json:
        s = score(results)
        print(
            json.dumps(
                {
                    **{k: v for k, v in s.items() if not k.startswith("per_") and k != "concept_cases"},
                    "per_rule": {k: vars(v) for k, v in s["per_rule"].items()},
                    "per_concept": {k: vars(v) for k, v in s["per_concept"].items()},
                    "misses": [str(r.path.relative_to(CORPUS)) for r in results if not r.ok],
                },
                indent=2,
            )
        )
    else:
        print(report(results, args.show))
    return 0


if __name__ == "__main__":
    sys.exit(main())
