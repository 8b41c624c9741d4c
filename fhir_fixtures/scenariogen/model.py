"""The scenario model: a chart plus draft orders that becomes one CDS Hooks request and its expected cards.

Also the four services with the rule ids each may return (checked by :mod:`scenariogen.validation`) and the
expected-card helpers shared by the scenario modules.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scenariogen.resources import NOW, USER

FHIR_BASE = "https://ehr.example.org/fhir"
UUID_NS = uuid.NAMESPACE_URL

# Every key the services declare, as a conforming EHR sends them. `reports_by_category` (EMG/NCS reports found
# by their category, for sites that code them locally) holds nothing here: every report is in `reports`.
PREFETCH_KEYS = (
    "conditions",
    "reports",
    "reports_by_category",
    "observations",
    "documents",
    "procedures",
    "orders",
    "encounters",
    "questionnaires",
)
PREFETCH_KEY_OF = {
    "QuestionnaireResponse": "questionnaires",
    "Condition": "conditions",
    "DiagnosticReport": "reports",
    "Observation": "observations",
    "DocumentReference": "documents",
    "Procedure": "procedures",
    "ServiceRequest": "orders",
    "Encounter": "encounters",
}


@functools.cache
def services() -> dict[str, tuple[str, frozenset[str]]]:
    """Service id -> (hook, rule ids it may fire), read from the registry: rule ids are declared once, on
    their service (hooks/*/service.py), and every fixture, test and benchmark reads them from there."""
    from cds.config import Settings  # deferred: declaring the services loads the knowledge files
    from hooks.app import services as declared

    return {s.id: (s.hook, frozenset(r.id for r in s.rules)) for s in declared(Settings())}


PV = "l5-radiculopathy-patient-view"
L5_OS = "l5-radiculopathy-order-select"
B_OS = "emg-ncs-necessity-order-select"
B_SIGN = "emg-ncs-necessity-order-sign"


@dataclass
class Scenario:
    stem: str  # "NN-slug"
    scenario: str  # brief number ("1", "20a") or extra id ("x-...")
    service: str
    pid: str
    note: str
    cards: list[dict[str, Any]] = field(default_factory=list)
    chart: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    selections: list[str] = field(default_factory=list)

    @property
    def hook(self) -> str:
        return services()[self.service][0]

    def add(self, *resources: dict[str, Any]) -> Scenario:
        self.chart.extend(resources)
        return self

    def draft(self, *orders: dict[str, Any], selected: Iterable[str] = ()) -> Scenario:
        self.drafts.extend(orders)
        self.selections.extend(f"ServiceRequest/{sid}" for sid in selected)
        return self

    def expect(self, *cards: dict[str, Any]) -> Scenario:
        self.cards.extend(copy.deepcopy(c) for c in cards)  # no YAML anchors/aliases
        return self

    def request(self) -> dict[str, Any]:
        context: dict[str, Any] = {"userId": USER, "patientId": self.pid}
        if self.hook == "order-select":
            context["selections"] = list(self.selections)
        if self.hook in ("order-select", "order-sign"):
            context["draftOrders"] = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {"fullUrl": f"urn:uuid:{_uuid(self.stem, o['id'])}", "resource": o} for o in self.drafts
                ],
            }
        prefetch = {
            key: searchset([r for r in self.chart if PREFETCH_KEY_OF[r["resourceType"]] == key])
            for key in PREFETCH_KEYS
        }
        return {
            "hook": self.hook,
            "hookInstance": _uuid(self.stem),
            "context": context,
            "prefetch": prefetch,
        }

    def expectation(self) -> dict[str, Any]:
        return {
            "file": f"{self.stem}.json",
            "scenario": self.scenario,
            "service": self.service,
            "hook": self.hook,
            "now": NOW,
            "cards": self.cards,
            "note": self.note,
        }


def _uuid(stem: str, *more: str) -> str:
    return str(uuid.uuid5(UUID_NS, ":".join(("urn:spine-cds:scenario", stem, *more))))


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{FHIR_BASE}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def card(rule: str, indicator: str, codes: Iterable[str] = (), recommended: Iterable[str] = (), **extra):
    out: dict[str, Any] = {
        "rule": rule,
        "indicator": indicator,
        "suggested_codes": sorted(codes),
        "recommended": sorted(recommended),
    }
    out.update(extra)
    return out


RED_FLAGS = card("red-flags", "critical", ["72148", "308482002"])
MRI_INFO = card("mri", "info", ["72148", "72197"], ["72148"])
MRI_WARN = card("mri", "warning", ["72148", "72197"], ["72148"])
CONSERVATIVE_PT = card("conservative-care", "info", ["306170007"])
ESI = card("esi", "info", ["64483"])
