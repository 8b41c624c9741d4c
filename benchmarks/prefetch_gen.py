"""A realistic, deterministic prefetch for load tests: a spine patient's chart of any size.

At 300 resources the mix is the one an EHR sends for a patient with a few years of history:
200 Observations (vitals and labs, mostly numeric, plus exam findings, smoking status and
blood-pressure panels), 50 Conditions, 20 DiagnosticReports (labs and imaging, two EMG/NCS
studies and two MRIs) and 30 others (notes, procedures, orders, encounters). Other sizes keep the
same proportions. Dates are relative to `today`, so the rules fire without a fixed clock: the
patient-view call gets the L5-radiculopathy cards and the order-sign call the M47.816 warning.
"""

from __future__ import annotations

import base64
import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fhir_fixtures" / "scenarios"
PATIENT = "bench-pt"
LOINC, ICD10, CPT = "http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm", "http://www.ama-assn.org/go/cpt"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"

VITALS = [
    ("8867-4", "Heart rate", "/min", 55, 95),
    ("9279-1", "Respiratory rate", "/min", 12, 20),
    ("8310-5", "Body temperature", "Cel", 36.1, 37.4),
    ("29463-7", "Body weight", "kg", 70, 95),
    ("59408-5", "Oxygen saturation", "%", 94, 100),
    ("39156-5", "Body mass index", "kg/m2", 23, 33),
]
LABS = [
    ("2345-7", "Glucose", "mg/dL", 70, 180),
    ("4548-4", "Hemoglobin A1c", "%", 5.2, 8.1),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3),
    ("2951-2", "Sodium", "mmol/L", 134, 146),
    ("2823-3", "Potassium", "mmol/L", 3.4, 5.2),
    ("718-7", "Hemoglobin", "g/dL", 11.5, 16.5),
    ("6690-2", "Leukocytes", "10*3/uL", 3.8, 11.0),
    ("2093-3", "Cholesterol", "mg/dL", 140, 260),
    ("1988-5", "C reactive protein", "mg/L", 0.2, 12),
    ("4537-7", "ESR", "mm/h", 2, 40),
]
CONDITIONS = [
    ("I10", "Essential hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("K21.9", "Gastro-esophageal reflux disease"),
    ("F41.1", "Generalized anxiety disorder"),
    ("J45.909", "Unspecified asthma"),
    ("M17.11", "Unilateral primary osteoarthritis, right knee"),
    ("G47.33", "Obstructive sleep apnea"),
    ("E66.9", "Obesity, unspecified"),
    ("N40.0", "Benign prostatic hyperplasia"),
    ("M79.7", "Fibromyalgia"),
    ("Z87.891", "Personal history of nicotine dependence"),
    ("J30.9", "Allergic rhinitis"),
    ("M25.561", "Pain in right knee"),
    ("R51.9", "Headache"),
    ("E03.9", "Hypothyroidism"),
    ("F32.A", "Depression, unspecified"),
    ("H52.4", "Presbyopia"),
]
LAB_REPORTS = [
    ("58410-2", "CBC panel"),
    ("24323-8", "Comprehensive metabolic panel"),
    ("57698-3", "Lipid panel"),
    ("4548-4", "Hemoglobin A1c"),
    ("24357-6", "Urinalysis"),
]
IMAGING = [
    ("36643-5", "XR Chest 2 views", "No acute cardiopulmonary process."),
    (
        "37637-2",
        "XR Lumbar spine 2 or 3 views",
        "Mild multilevel degenerative disc disease. Alignment normal.",
    ),
    ("24566-2", "US Abdomen", "Hepatic steatosis. No gallstones."),
    ("36572-6", "XR Knee right", "Moderate medial compartment osteoarthritis."),
]


def _scenario_resource(scenario: str, rid: str) -> dict[str, Any]:
    body = json.loads((SCENARIOS / scenario).read_text(encoding="utf-8"))
    for value in body["prefetch"].values():
        for entry in (value or {}).get("entry", []):
            if entry["resource"].get("id") == rid:
                return entry["resource"]
    raise KeyError(f"{rid} not in {scenario}")


class Chart:
    """Builds one patient's resources; `rng` makes every run identical."""

    def __init__(self, today: date, seed: int = 7) -> None:
        self.today = today
        self.rng = random.Random(seed)
        self.count = 0

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count}"

    def _day(self, max_days: int, min_days: int = 0) -> str:
        return (self.today - timedelta(days=self.rng.randint(min_days, max_days))).isoformat()

    def _base(self, rtype: str, prefix: str) -> dict[str, Any]:
        return {
            "resourceType": rtype,
            "id": self._id(prefix),
            "meta": {"lastUpdated": f"{self._day(900)}T10:00:00Z"},
            "subject": {"reference": f"Patient/{PATIENT}"},
        }

    def _quantity_obs(self, spec: tuple[str, str, str, float, float], category: str) -> dict[str, Any]:
        code, name, unit, low, high = spec
        value = round(self.rng.uniform(low, high), 1)
        return {
            **self._base("Observation", "obs"),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
            "effectiveDateTime": self._day(1400),
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
            "referenceRange": [{"low": {"value": low}, "high": {"value": high}}],
        }

    def observation(self, i: int) -> dict[str, Any]:
        kind = i % 20
        if kind == 0:
            return {
                **self._base("Observation", "obs"),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "exam"}]}],
                "code": {"coding": [{"system": LOINC, "code": "29545-1"}], "text": "Neurologic exam"},
                "effectiveDateTime": self._day(400),
                "valueString": self.rng.choice(
                    [
                        "Strength 5/5 bilateral lower extremities. Reflexes 2+ and symmetric.",
                        "Left EHL 4+/5, ankle dorsiflexion 5-/5. Reduced sensation, dorsum of the foot.",
                        "Straight leg raise positive on the left at 45 degrees. Gait antalgic.",
                    ]
                ),
            }
        if kind == 1:
            return {
                **self._base("Observation", "obs"),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "Blood pressure panel"},
                "effectiveDateTime": self._day(1400),
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": c}]},
                        "valueQuantity": {"value": self.rng.randint(lo, hi), "unit": "mm[Hg]"},
                    }
                    for c, lo, hi in (("8480-6", 110, 150), ("8462-4", 65, 95))
                ],
            }
        if kind == 2:
            return {
                **self._base("Observation", "obs"),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CAT, "code": "social-history"}]}],
                "code": {"coding": [{"system": LOINC, "code": "72166-2"}], "text": "Tobacco smoking status"},
                "effectiveDateTime": self._day(1400),
                "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]},
            }
        if kind < 10:
            return self._quantity_obs(VITALS[i % len(VITALS)], "vital-signs")
        return self._quantity_obs(LABS[i % len(LABS)], "laboratory")

    def condition(self, i: int, code: str | None = None, name: str = "", days: int = 3000) -> dict[str, Any]:
        if code is None:
            code, name = CONDITIONS[i % len(CONDITIONS)]
        active = code is not None and self.rng.random() < 0.7
        onset = self._day(days)
        return {
            **self._base("Condition", "cond"),
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active" if active else "resolved",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "problem-list-item",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": ICD10, "code": code, "display": name}], "text": name},
            "onsetDateTime": onset,
            "recordedDate": onset,
        }

    def report(self, i: int) -> dict[str, Any]:
        if i % 3 == 0:
            code, name, conclusion = IMAGING[i % len(IMAGING)]
            category = {"system": LOINC, "code": "LP29684-5", "display": "Radiology"}
        else:
            code, name = LAB_REPORTS[i % len(LAB_REPORTS)]
            conclusion = "Results reviewed. " + self.rng.choice(
                ["Within normal limits.", "See flagged values."]
            )
            category = {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}
        return {
            **self._base("DiagnosticReport", "rep"),
            "status": "final",
            "category": [{"coding": [category]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
            "effectiveDateTime": self._day(1400),
            "issued": f"{self._day(1400)}T12:00:00Z",
            "result": [{"reference": f"Observation/obs-{self.rng.randint(1, 200)}"}],
            "conclusion": conclusion,
        }

    def clinical_report(self, scenario: str, rid: str, days_ago: int) -> dict[str, Any]:
        """An EMG or MRI report from the scenario fixtures, re-dated and re-owned."""
        raw = json.loads(json.dumps(_scenario_resource(scenario, rid)))
        raw["id"] = self._id(rid)
        raw["subject"] = {"reference": f"Patient/{PATIENT}"}
        when = (self.today - timedelta(days=days_ago)).isoformat()
        raw["effectiveDateTime"] = when
        raw["issued"] = f"{when}T16:30:00-05:00"
        return raw

    def note(self) -> dict[str, Any]:
        text = self.rng.choice(
            [
                "Follow-up of low back pain radiating to the left leg. No bowel or bladder symptoms. "
                "Continue home exercise program.",
                "Diabetes follow-up. A1c improving. Continue metformin. Foot exam normal.",
                "Annual visit. Immunizations up to date. Counselled on weight and exercise.",
            ]
        )
        when = self._day(700)
        return {
            **self._base("DocumentReference", "doc"),
            "status": "current",
            "docStatus": "final",
            "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
            "date": f"{when}T11:00:00Z",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(text.encode()).decode(),
                    }
                }
            ],
        }

    def procedure(self, i: int) -> dict[str, Any]:
        code, name = [
            ("97110", "Therapeutic exercises"),
            ("99213", "Office visit"),
            ("20610", "Knee injection"),
        ][i % 3]
        return {
            **self._base("Procedure", "proc"),
            "status": "completed",
            "code": {"coding": [{"system": CPT, "code": code, "display": name}]},
            "performedDateTime": self._day(1400, 60),
        }

    def order(self, i: int) -> dict[str, Any]:
        return {
            **self._base("ServiceRequest", "sr"),
            "status": "completed",
            "intent": "order",
            "code": {
                "coding": [{"system": CPT, "code": "80053", "display": "Comprehensive metabolic panel"}]
            },
            "authoredOn": self._day(1400),
        }

    def encounter(self) -> dict[str, Any]:
        start = self._day(1400)
        return {
            **self._base("Encounter", "enc"),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "period": {"start": f"{start}T09:00:00Z", "end": f"{start}T09:30:00Z"},
        }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def make_prefetch(total: int = 300, today: date | None = None, seed: int = 7) -> dict[str, Any]:
    """Prefetch keyed like the services' templates, with `total` resources in the 200/50/20/30 mix."""
    chart = Chart(today or date.today(), seed)
    n_obs, n_cond, n_rep = total * 200 // 300, total * 50 // 300, max(4, total * 20 // 300)
    n_other = max(0, total - n_obs - n_cond - n_rep)
    conditions = [chart.condition(i) for i in range(n_cond - 2)]
    conditions.append(chart.condition(0, "M54.17", "Radiculopathy, lumbosacral region", days=30))
    conditions.append(chart.condition(0, "M47.816", "Spondylosis without radiculopathy, lumbar", days=900))
    reports = [chart.report(i) for i in range(n_rep - 4)]
    reports += [
        chart.clinical_report("01-l5-no-mri.json", "s01-emg", 14),  # recent: L5 with axon loss
        chart.clinical_report("02-emg-normal.json", "s02-emg", 1500),  # old, normal study
        chart.clinical_report("08-eight-weeks-pt-done-mri-herniation.json", "s08-mri", 2200),  # old MRI
        chart.clinical_report("08-eight-weeks-pt-done-mri-herniation.json", "s08-mri", 2900),
    ]
    documents, procedures, orders, encounters = [], [], [], []
    for i in range(n_other):
        bucket = i % 4
        if bucket == 0:
            documents.append(chart.note())
        elif bucket == 1:
            procedures.append(chart.procedure(i))
        elif bucket == 2:
            orders.append(chart.order(i))
        else:
            encounters.append(chart.encounter())
    return {
        "conditions": _bundle(conditions),
        "reports": _bundle(reports),
        "observations": _bundle([chart.observation(i) for i in range(n_obs)]),
        "documents": _bundle(documents),
        "procedures": _bundle(procedures),
        "orders": _bundle(orders),
        "encounters": _bundle(encounters),
    }


if __name__ == "__main__":
    sample = make_prefetch(300)
    counts: dict[str, int] = {}
    for b in sample.values():
        for e in b["entry"]:
            counts[e["resource"]["resourceType"]] = counts.get(e["resource"]["resourceType"], 0) + 1
    print(json.dumps(counts), len(json.dumps(sample)), "bytes")
