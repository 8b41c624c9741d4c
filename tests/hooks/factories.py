"""Builders for the unit tests of hooks/: parsed FHIR R4B models, hook inputs and typed `PatientEvidence`.

Resources are built as FHIR JSON and validated into fhir.resources models (as the engine's parser does),
so a test reads like the chart it describes: `condition("M54.17", onset=days_ago(20))`. Dates are relative
to one fixed day (`TODAY`) so windows can be tested at their edges.
"""

from __future__ import annotations

import base64
import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from cds.registry import HookInput
from hooks.common.knowledge import Terminology, load_terminology
from hooks.evidence.builder import EvidenceBuilder
from hooks.evidence.care_history import CareEvidence
from hooks.evidence.diagnoses import DiagnosisEvidence
from hooks.evidence.edx_reports import EdxEvidence
from hooks.evidence.episode import Episode
from hooks.evidence.imaging import ImagingEvidence
from hooks.evidence.model import EdxStudy, EmgFinding, Evidence, MriStudy, PatientEvidence, WindowDays
from hooks.evidence.motor_exam import MotorFindings
from hooks.nlp import EmgTextFinding

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PATIENT = "p1"

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
SYSTEMS = {"icd10cm": ICD, "snomed": SNOMED, "cpt": CPT, "loinc": LOINC}

_ids = itertools.count(1)

_BUILDER: EvidenceBuilder | None = None


def builder() -> EvidenceBuilder:
    """The real evidence builder with the shipped knowledge (built once per test process: ~0.3 s)."""
    global _BUILDER
    if _BUILDER is None:
        _BUILDER = EvidenceBuilder(load_terminology(None))
    return _BUILDER


def terms() -> Terminology:
    return builder().terms


def days_ago(n: int) -> str:
    """An ISO date `n` days before TODAY."""
    return (TODAY - timedelta(days=n)).isoformat()


def day_of(n: int) -> date:
    return TODAY - timedelta(days=n)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def parse(raw: dict[str, Any]) -> Any:
    """FHIR JSON -> a validated fhir.resources R4B model."""
    return get_fhir_model_class(raw["resourceType"]).model_validate(raw)


def concept(code: str | None = None, system: str = "icd10cm", text: str | None = None, display=None):
    out: dict[str, Any] = {}
    if code is not None:
        coding = {"system": SYSTEMS.get(system, system), "code": code}
        if display:
            coding["display"] = display
        out["coding"] = [coding]
    if text is not None:
        out["text"] = text
    return out


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- resources ---------------------------------------------------------------------------------------------


def condition(
    code: str | None = None,
    *,
    system: str = "icd10cm",
    text: str | None = None,
    onset: str | None = None,
    recorded: str | None = None,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    category: str = "problem-list-item",
    note: str | None = None,
    id: str | None = None,
) -> Any:
    raw: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id or _id("cond"),
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(code, system, text),
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": category,
                    }
                ]
            }
        ],
    }
    if clinical:
        raw["clinicalStatus"] = {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}
            ]
        }
    if verification:
        raw["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    if onset:
        raw["onsetDateTime"] = onset
    if recorded:
        raw["recordedDate"] = recorded
    if note:
        raw["note"] = [{"text": note}]
    return parse(raw)


def observation(
    question: str | None = None,
    *,
    code: dict[str, Any] | None = None,
    when: str | None = None,
    status: str = "final",
    category: str | None = None,
    components: list[dict[str, Any]] | None = None,
    note: str | None = None,
    id: str | None = None,
    **value: Any,
) -> Any:
    """A flowsheet/exam row: `question` is code.text, `value` one value[x] (e.g. valueString="Yes")."""
    raw: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id or _id("obs"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": code if code is not None else {"text": question},
        "effectiveDateTime": when or days_ago(1),
        **value,
    }
    if category:
        raw["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ]
    if components:
        raw["component"] = components
    if note:
        raw["note"] = [{"text": note}]
    return parse(raw)


def yes_no(answer: str) -> dict[str, Any]:
    """valueCodeableConcept for SNOMED Yes (373066001) / No (373067005)."""
    code = {"yes": "373066001", "no": "373067005"}[answer]
    return {"coding": [{"system": SNOMED, "code": code, "display": answer.title()}]}


def document(
    text: str | None = None,
    *,
    when: str | None = None,
    kind: str = "Progress note",
    type_code: dict[str, Any] | None = None,
    content_type: str = "text/plain",
    description: str | None = None,
    status: str = "current",
    doc_status: str | None = None,
    period_start: str | None = None,
    id: str | None = None,
    attachment: dict[str, Any] | None = None,
) -> Any:
    raw: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": id or _id("doc"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "type": type_code if type_code is not None else {"text": kind},
        "date": f"{when or days_ago(1)}T10:00:00Z",
        "content": [
            {"attachment": attachment or ({"contentType": content_type, "data": b64(text)} if text else {})}
        ],
    }
    if description:
        raw["description"] = description
    if doc_status:
        raw["docStatus"] = doc_status
    if period_start:
        raw["context"] = {"period": {"start": period_start}}
    return parse(raw)


def report(
    *,
    code: dict[str, Any] | None = None,
    conclusion: str | None = None,
    text: str | None = None,
    content_type: str = "text/plain",
    when: str | None = None,
    status: str = "final",
    category: dict[str, Any] | None = None,
    results: list[str] | None = None,
    contained: list[dict[str, Any]] | None = None,
    identifier: str | None = None,
    issued: str | None = None,
    presented: dict[str, Any] | None = None,
    id: str | None = None,
) -> Any:
    """A DiagnosticReport (by default an EMG/NCS study, LOINC 18749-2)."""
    raw: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": id or _id("rep"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": code if code is not None else emg_code(),
        "effectiveDateTime": when or days_ago(10),
    }
    if conclusion:
        raw["conclusion"] = conclusion
    if text is not None or presented is not None:
        raw["presentedForm"] = [presented or {"contentType": content_type, "data": b64(text or "")}]
    if category:
        raw["category"] = [category]
    if results:
        raw["result"] = [{"reference": r} for r in results]
    if contained:
        raw["contained"] = contained
    if identifier:
        raw["identifier"] = [{"system": "urn:lab", "value": identifier}]
    if issued:
        raw["issued"] = issued
    return parse(raw)


def emg_code(text: str = "EMG/NCS lower extremity") -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": "18749-2", "display": "Electromyogram study"}], "text": text}


def mri_code(code: str = "72148", text: str = "MRI lumbar spine without contrast") -> dict[str, Any]:
    return {"coding": [{"system": CPT, "code": code}], "text": text}


def procedure(
    code: str | None,
    *,
    system: str = "cpt",
    text: str | None = None,
    when: str | None = None,
    status: str = "completed",
    body_site: str | None = None,
    id: str | None = None,
) -> Any:
    raw: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": id or _id("proc"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(code, system, text),
        "performedDateTime": when or days_ago(30),
    }
    if body_site:
        raw["bodySite"] = [{"text": body_site}]
    return parse(raw)


def order(
    code: str | None,
    *,
    system: str = "cpt",
    text: str | None = None,
    status: str = "draft",
    when: str | None = None,
    body_site: dict[str, Any] | None = None,
    reason_codes: Iterable[str] = (),
    reason_refs: Iterable[str] = (),
    encounter: str | None = None,
    id: str | None = None,
) -> Any:
    """A ServiceRequest (CPT by default)."""
    raw: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": id or _id("sr"),
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(code, system, text),
        "authoredOn": when or days_ago(0),
    }
    if body_site:
        raw["bodySite"] = [body_site]
    codes = list(reason_codes)
    if codes:
        raw["reasonCode"] = [{"coding": [{"system": ICD, "code": c}]} for c in codes]
    refs = list(reason_refs)
    if refs:
        raw["reasonReference"] = [{"reference": r} for r in refs]
    if encounter:
        raw["encounter"] = {"reference": encounter}
    return parse(raw)


def questionnaire(items: list[tuple[str, dict[str, Any] | None]], *, when: str | None = None) -> Any:
    """A QuestionnaireResponse: (question text, answer value dict or None for unanswered) pairs."""
    raw_items = []
    for i, (question, answer) in enumerate(items):
        item: dict[str, Any] = {"linkId": f"q{i}", "text": question}
        if answer is not None:
            item["answer"] = [answer]
        raw_items.append(item)
    return parse(
        {
            "resourceType": "QuestionnaireResponse",
            "id": _id("qr"),
            "status": "completed",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "authored": f"{when or days_ago(1)}T09:00:00Z",
            "item": raw_items,
        }
    )


def encounter(
    type_code: str | None = None,
    *,
    system: str = "cpt",
    text: str | None = None,
    when: str | None = None,
    status: str = "finished",
    reason: str | None = None,
) -> Any:
    raw: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": _id("enc"),
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "period": {"start": f"{when or days_ago(5)}T09:00:00Z"},
    }
    if type_code or text:
        raw["type"] = [concept(type_code, system, text)]
    if reason:
        raw["reasonCode"] = [{"text": reason}]
    return parse(raw)


# -- hook inputs -------------------------------------------------------------------------------------------


def by_type(resources: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for res in resources:
        out[res.get_resource_type()].append(res)
    return dict(out)


def hook_input(
    *resources: Any,
    hook: str = "patient-view",
    drafts: Iterable[Any] = (),
    selections: Iterable[str] = (),
    incomplete: Iterable[str] = (),
    now: datetime = NOW,
) -> HookInput:
    return HookInput(
        hook=hook,
        hook_instance="test-instance",
        patient_id=PATIENT,
        user_id="Practitioner/u1",
        now=now,
        context={"patientId": PATIENT},
        resources=by_type(resources),
        draft_orders=list(drafts),
        selections=tuple(selections),
        incomplete=tuple(incomplete),
    )


def build(*resources: Any, drafts: Iterable[Any] = (), **kwargs: Any) -> PatientEvidence:
    """The real evidence builder over these resources."""
    return builder().build(hook_input(*resources, drafts=drafts, **kwargs))


def narratives(*resources: Any) -> list[Any]:
    """The narratives (notes, flowsheet rows, questionnaires, visit reasons) the concepts read."""
    b = builder()
    return b.narratives(b.chart(hook_input(*resources)), set())


def chart(*resources: Any):
    b = builder()
    return b.chart(hook_input(*resources))


# -- typed evidence for the rule tests -------------------------------------------------------------------


def emg_text_finding(
    *,
    positive: bool = True,
    laterality: str | None = "left",
    chronicity: str | None = "chronic-active",
    confidence: str = "high",
    multi_level: bool = False,
    other_roots: tuple[str, ...] = (),
    text: str = "Left L5 radiculopathy with active denervation.",
) -> EmgTextFinding:
    return EmgTextFinding(
        l5_radiculopathy=positive,
        axon_loss=positive,
        positive=positive,
        laterality=laterality,
        chronicity=chronicity,
        confidence=confidence,
        multi_level=multi_level,
        other_roots=other_roots,
        mimic=None,
        uncertain=False,
        negated=not positive,
        matched_text=text,
        section="IMPRESSION",
        truncated=False,
    )


def ev(
    ref: str, ago: int | None, text: str = "", label: str = "", code: str = "", what: str = "", display=""
) -> Evidence:
    return Evidence(ref, day_of(ago) if ago is not None else None, text, label, code, what, display)


def emg_reading(ago: int = 10, ref: str = "DiagnosticReport/emg1", **finding: Any) -> EmgFinding:
    f = emg_text_finding(**finding)
    return EmgFinding(ev(ref, ago, f.matched_text, "EMG/NCS report"), f, True)


def mri_study(
    ago: int,
    *,
    compressive: bool = True,
    plexus: bool = False,
    levels: tuple[str, ...] = (),
    ref: str | None = None,
    text: str = "L4-5 left paracentral disc extrusion compressing the traversing L5 root.",
) -> MriStudy:
    label = "Plexus MRI" if plexus else "Lumbar spine MRI"
    return MriStudy(ev(ref or _id("DiagnosticReport/mri"), ago, text, label), compressive, plexus, levels)


def windows() -> WindowDays:
    return builder().windows


def patient_evidence(
    *,
    emg: EmgFinding | None | str = "positive",
    onset_ago: int | None = 20,
    onset_source: Evidence | None = None,
    mri: Iterable[MriStudy] = (),
    pending_mri: Iterable[Evidence] = (),
    red_flags: Iterable[Evidence] = (),
    severe: Iterable[Evidence] = (),
    deficits: Iterable[Evidence] = (),
    radiculopathy: Iterable[Evidence] = (),
    symptom_conditions: Iterable[Evidence] | None = None,
    radicular_symptoms: Iterable[Evidence] = (),
    care: CareEvidence | None = None,
    studies: Iterable[EdxStudy] = (),
    unreadable: Iterable[Evidence] = (),
    ordered: set[tuple[str, str]] | None = None,
    incomplete: tuple[str, ...] = (),
    today: date = TODAY,
) -> PatientEvidence:
    """Typed evidence as the rules read it. By default: a positive EMG 10 days ago, symptoms for 20 days
    (an active M54.17 diagnosis dated at the onset), nothing else on file."""
    readings = [emg_reading()] if emg == "positive" else ([emg] if isinstance(emg, EmgFinding) else [])
    onset = day_of(onset_ago) if onset_ago is not None else None
    dx = ev(
        "Condition/radic", onset_ago, "Lumbosacral radiculopathy", "Problem list", "M54.17", "radiculopathy"
    )
    source = onset_source or (dx if onset else None)
    symptoms = list(symptom_conditions) if symptom_conditions is not None else ([dx] if onset else [])
    return PatientEvidence(
        today=today,
        windows=windows(),
        edx=EdxEvidence(readings, list(studies), list(unreadable)),
        imaging=ImagingEvidence(
            sorted(mri, key=lambda m: m.evidence.when or date.min, reverse=True), list(pending_mri)
        ),
        diagnoses=DiagnosisEvidence(list(radiculopathy), symptoms, list(radicular_symptoms)),
        care=care or CareEvidence(),
        motor=MotorFindings(list(severe), list(deficits)),
        red_flags=list(red_flags),
        episode=Episode(onset, source),
        ordered=ordered or set(),
        incomplete=incomplete,
    )


class StubBuilder:
    """Stands in for EvidenceBuilder in rule tests: `build(call)` returns the evidence under test, while
    `windows`, `terms` and the EDX reader stay real (the rules read them)."""

    def __init__(self, evidence: PatientEvidence | None = None) -> None:
        real = builder()
        self.windows = real.windows
        self.terms = real.terms
        self.edx = real.edx
        self.evidence = evidence
        self.calls: list[HookInput] = []

    def build(self, call: HookInput) -> PatientEvidence:
        self.calls.append(call)
        assert self.evidence is not None, "set the evidence before calling the rules"
        return self.evidence


def rule_ids(cards: Iterable[Any]) -> list[str]:
    return [c.source.topic.code for c in cards]
