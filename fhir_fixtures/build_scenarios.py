"""Generate the clinical scenario fixtures: CDS Hooks request bodies plus `expected.yaml`.

Sources: `shared/docs/clinical-brief.md` sections 2, 4.0-4.2, 5.1, 6 and 7 (NOW = 2026-01-15), and
issues 3 (L5 radiculopathy services, rule ids) and 4 (EMG/NCS necessity services, rule ids).
Where an issue and the brief differ, the issue wins.

Usage (from the repository root):

    .venv/bin/python fhir_fixtures/build_scenarios.py           # (re)write fhir_fixtures/scenarios/
    .venv/bin/python fhir_fixtures/build_scenarios.py --check   # exit 1 if the files are stale

The output is deterministic: fixed resource ids, hookInstance = uuid5(NAMESPACE_URL,
"urn:spine-cds:scenario:<file stem>"), no randomness and no clock. Every FHIR resource is validated
with fhir.resources R4B before anything is written.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fhir.resources.R4B import get_fhir_model_class

OUT_DIR = Path(__file__).resolve().parent / "scenarios"
NOW = "2026-01-15"
FHIR_BASE = "https://ehr.example.org/fhir"
USER = "Practitioner/example-dr"
UUID_NS = uuid.NAMESPACE_URL

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL_PROC = "https://ehr.example.org/fhir/CodeSystem/local-procedure-codes"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
US_CORE_DOC_CAT = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
EMG_ACCESSION = "https://ehr.example.org/fhir/sid/emg-accession"

PREFETCH_KEYS = ("conditions", "reports", "observations", "documents", "procedures", "orders", "encounters")
PREFETCH_KEY_OF = {
    "Condition": "conditions",
    "DiagnosticReport": "reports",
    "Observation": "observations",
    "DocumentReference": "documents",
    "Procedure": "procedures",
    "ServiceRequest": "orders",
    "Encounter": "encounters",
}

SERVICES = {
    "l5-radiculopathy-patient-view": (
        "patient-view",
        {"red-flags", "motor-deficit", "mri", "conservative-care", "esi", "surgical-referral"},
    ),
    "l5-radiculopathy-order-select": (
        "order-select",
        {"red-flags", "mri-documentation", "esi-timing", "mri-before-surgery"},
    ),
    "emg-ncs-necessity-order-select": ("order-select", {"emg-dx-mismatch", "emg-dx-link"}),
    "emg-ncs-necessity-order-sign": ("order-sign", {"emg-dx-mismatch", "emg-dx-link"}),
}
PV = "l5-radiculopathy-patient-view"
L5_OS = "l5-radiculopathy-order-select"
B_OS = "emg-ncs-necessity-order-select"
B_SIGN = "emg-ncs-necessity-order-sign"

# Issue 4, step 7: the radiculopathy codes offered as replacement order diagnoses.
CANDIDATE_DX = ("M54.16", "M54.17", "M51.16", "M51.17", "M47.26", "M47.27")
ANY_CANDIDATE = "any-one-of-candidates"

# --------------------------------------------------------------------------------------------
# Terminology (displays from the brief, section 2; CPT descriptors paraphrased)
# --------------------------------------------------------------------------------------------

DISPLAY = {
    (ICD, "M54.16"): "Radiculopathy, lumbar region",
    (ICD, "M54.17"): "Radiculopathy, lumbosacral region",
    (ICD, "M51.16"): "Intervertebral disc disorders with radiculopathy, lumbar region",
    (ICD, "M51.17"): "Intervertebral disc disorders with radiculopathy, lumbosacral region",
    (ICD, "M54.42"): "Lumbago with sciatica, left side",
    (ICD, "M54.41"): "Lumbago with sciatica, right side",
    (ICD, "M47.816"): "Spondylosis without myelopathy or radiculopathy, lumbar region",
    (ICD, "M47816"): "Spondylosis without myelopathy or radiculopathy, lumbar region",
    (ICD, "M21.372"): "Foot drop, left foot",
    (ICD, "R33.9"): "Retention of urine, unspecified",
    (ICD, "G83.4"): "Cauda equina syndrome",
    (ICD, "G57.32"): "Lesion of lateral popliteal nerve, left lower limb",
    (ICD, "Z98.1"): "Arthrodesis status",
    (ICD, "M54.50"): "Low back pain, unspecified",
    (ICD, "E11.9"): "Type 2 diabetes mellitus without complications",
    (SCT, "68859000"): "Spondylosis without myelopathy (disorder)",
    (SCT, "61685007"): "Lower limb structure (body structure)",
    (SCT, "53120007"): "Upper limb structure (body structure)",
    (SCT, "7771000"): "Left (qualifier value)",
    (SCT, "24028007"): "Right (qualifier value)",
    (SCT, "51440002"): "Right and left (qualifier value)",
    (SCT, "308482002"): "Referral to neurosurgeon (procedure)",
    (SCT, "306170007"): "Referral to physiotherapy service (procedure)",
    (SCT, "103693007"): "Diagnostic procedure (procedure)",
    (SCT, "363679005"): "Imaging (procedure)",
    (SCT, "108252007"): "Laboratory procedure (procedure)",
    (SCT, "3457005"): "Patient referral (procedure)",
    (SCT, "387713003"): "Surgical procedure (procedure)",
    (SCT, "185345009"): "Encounter for symptom (procedure)",
    (SCT, "50849002"): "Emergency room admission (procedure)",
    (LOINC, "18749-2"): "Electromyogram study",
    (LOINC, "30679-5"): "MR Lumbar spine WO contrast",
    (LOINC, "29545-1"): "Physical findings Narrative",
    (LOINC, "11506-3"): "Progress note",
    (LOINC, "2345-7"): "Glucose [Mass/volume] in Serum or Plasma",
    (CPT, "95886"): "Needle EMG, each extremity with related paraspinal areas, with NCS; complete",
    (CPT, "95909"): "Nerve conduction studies; 5-6 studies",
    (CPT, "95910"): "Nerve conduction studies; 7-8 studies",
    (CPT, "95911"): "Nerve conduction studies; 9-10 studies",
    (CPT, "72148"): "MRI spinal canal and contents, lumbar; without contrast",
    (CPT, "72197"): "MRI pelvis without contrast, followed by contrast and further sequences",
    (CPT, "64483"): "Transforaminal epidural injection, lumbar or sacral, single level, with imaging",
    (CPT, "97161"): "Physical therapy evaluation, low complexity",
    (CPT, "97162"): "Physical therapy evaluation, moderate complexity",
    (CPT, "97110"): "Therapeutic exercises, each 15 minutes",
    (CPT, "63030"): "Laminotomy with nerve root decompression and/or excision of disc, 1 interspace, lumbar",
    (CPT, "22630"): "Arthrodesis, posterior interbody technique, single interspace; lumbar",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    display = display or DISPLAY.get((system, code))
    if display:
        out["display"] = display
    return out


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def icd(code: str, text: str | None = None) -> dict[str, Any]:
    return concept(coding(ICD, code), text=text)


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def subject(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


# --------------------------------------------------------------------------------------------
# Resource builders
# --------------------------------------------------------------------------------------------


def condition(
    pid: str,
    cid: str,
    code: dict[str, Any],
    onset: str | None,
    *,
    category: str = "problem-list-item",
    clinical: str | None = "active",
    verification: str = "confirmed",
    recorded: str | None = None,
    abatement: str | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Condition", "id": cid}
    if clinical and verification != "entered-in-error":  # invariant con-5
        res["clinicalStatus"] = concept(coding(COND_CLINICAL, clinical, clinical.capitalize()))
    res["verificationStatus"] = concept(
        coding(
            COND_VER, verification, {"entered-in-error": "Entered in Error"}.get(verification, "Confirmed")
        )
    )
    cat_display = {"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}
    res["category"] = [concept(coding(COND_CAT, category, cat_display[category]))]
    res["code"] = code
    res["subject"] = subject(pid)
    if onset:
        res["onsetDateTime"] = onset
    if abatement:
        res["abatementDateTime"] = abatement
    res["recordedDate"] = recorded or onset
    return res


def emg_report(
    pid: str,
    rid: str,
    date: str,
    *,
    conclusion: str | None,
    text: str = "EMG/NCS LEFT LOWER EXTREMITY",
    cpt: Iterable[str] = (),
    loinc: bool = True,
    local_code: str | None = None,
    category_en: bool = True,
    form: str | None = None,
    form_type: str = "text/plain",
    status: str = "final",
    accession: str | None = None,
    issued: str | None = None,
) -> dict[str, Any]:
    """An EMG/NCS DiagnosticReport (brief 5.1 / 6)."""
    codings = []
    if loinc:
        codings.append(coding(LOINC, "18749-2"))
    codings += [coding(CPT, c) for c in cpt]
    if local_code:
        codings.append(coding(LOCAL_PROC, local_code, text))
    res: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": rid}
    res["identifier"] = [{"system": EMG_ACCESSION, "value": accession or f"EMG-{rid}"}]
    res["status"] = status
    if category_en:
        res["category"] = [concept(coding(V2_0074, "EN", "Electroneuro"))]
    res["code"] = concept(*codings, text=text)
    res["subject"] = subject(pid)
    res["effectiveDateTime"] = date
    res["issued"] = issued or f"{date}T16:30:00-05:00"
    res["performer"] = [{"reference": "Practitioner/emg-lab-md", "display": "Electrodiagnostic laboratory"}]
    if conclusion:
        res["conclusion"] = conclusion
    if form:
        ext = "html" if form_type == "text/html" else "txt"
        res["presentedForm"] = [
            {
                "contentType": form_type,
                "language": "en-US",
                "data": b64(form),
                "title": f"emg-report-{rid}.{ext}",
                "creation": res["issued"],
            }
        ]
    return res


def emg_text(indication: str, ncs: str, needle: str, impression: str, *, header: str | None = None) -> str:
    """A plain-text EMG report with the section layout labs commonly use."""
    parts = [
        header or "ELECTRODIAGNOSTIC CONSULTATION - LOWER EXTREMITY EMG/NCS",
        "",
        indication,
        "",
        "NERVE CONDUCTION STUDIES:",
        ncs,
        "",
        "NEEDLE EMG:",
        needle,
        "",
        "IMPRESSION:",
        impression,
        "",
    ]
    return "\n".join(parts)


def emg_html(indication: str, ncs: str, needle: str, impression: str) -> str:
    return (
        "<html><body>"
        "<h2>Electrodiagnostic Laboratory Report</h2>"
        f"<h3>Indication</h3><p>{indication}</p>"
        f"<h3>Nerve Conduction Studies</h3><p>{ncs}</p>"
        f"<h3>Needle Electromyography</h3><p>{needle}</p>"
        f"<h3>Impression</h3><p>{impression}</p>"
        "</body></html>"
    )


def mri_report(pid: str, rid: str, date: str, conclusion: str) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "category": [concept(coding("http://loinc.org", "LP29684-5", "Radiology"))],
        "code": concept(coding(LOINC, "30679-5"), text="MRI LUMBAR SPINE WITHOUT CONTRAST"),
        "subject": subject(pid),
        "effectiveDateTime": date,
        "issued": f"{date}T18:05:00-05:00",
        "performer": [{"reference": "Practitioner/radiologist-1", "display": "Radiology"}],
        "conclusion": conclusion,
    }


def exam(pid: str, oid: str, date: str, value: str, code_text: str = "Neurologic exam") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [concept(coding(OBS_CAT, "exam", "Exam"))],
        "code": concept(coding(LOINC, "29545-1"), text=code_text),
        "subject": subject(pid),
        "effectiveDateTime": date,
        "performer": [{"reference": USER}],
        "valueString": value,
    }


def note(pid: str, did: str, date: str, text: str, title: str = "Progress note") -> dict[str, Any]:
    stamp = f"{date}T11:15:00-05:00"
    return {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "docStatus": "final",
        "type": concept(coding(LOINC, "11506-3"), text=title),
        "category": [concept(coding(US_CORE_DOC_CAT, "clinical-note", "Clinical Note"))],
        "subject": subject(pid),
        "date": stamp,
        "author": [{"reference": USER}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": b64(text),
                    "title": title,
                    "creation": stamp,
                }
            }
        ],
    }


def procedure(pid: str, prid: str, code: str, date: str, *, system: str = CPT, text: str | None = None):
    return {
        "resourceType": "Procedure",
        "id": prid,
        "status": "completed",
        "code": concept(coding(system, code), text=text),
        "subject": subject(pid),
        "performedDateTime": date,
    }


def encounter(pid: str, eid: str, date: str, reason: str, *, emergency: bool = False) -> dict[str, Any]:
    cls = coding(ACT_CODE, "EMER", "emergency") if emergency else coding(ACT_CODE, "AMB", "ambulatory")
    etype = coding(SCT, "50849002") if emergency else coding(SCT, "185345009")
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": cls,
        "type": [concept(etype)],
        "subject": subject(pid),
        "period": {"start": f"{date}T09:00:00-05:00", "end": f"{date}T09:40:00-05:00"},
        "reasonCode": [concept(text=reason)],
    }


def service_request(
    pid: str,
    sid: str,
    code: dict[str, Any],
    *,
    status: str = "draft",
    authored: str = NOW,
    category: str | None = None,
    reasons: Iterable[dict[str, Any]] = (),
    reason_refs: Iterable[str] = (),
    body_sites: Iterable[dict[str, Any]] = (),
    quantity: int | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": sid, "status": status, "intent": "order"}
    if category:
        res["category"] = [concept(coding(SCT, category))]
    res["priority"] = "routine"
    res["code"] = code
    if quantity is not None:
        res["quantityQuantity"] = {"value": quantity, "unit": "study"}
    res["subject"] = subject(pid)
    res["authoredOn"] = authored
    res["requester"] = {"reference": USER}
    reasons = list(reasons)
    if reasons:
        res["reasonCode"] = reasons
    refs = list(reason_refs)
    if refs:
        res["reasonReference"] = [{"reference": r} for r in refs]
    sites = list(body_sites)
    if sites:
        res["bodySite"] = sites
    return res


def edx_order(pid, sid, cpt, text, *, reasons, limb="lower", side="51440002", quantity=None, **kw):
    """A draft EMG/NCS order; laterality is carried as a second bodySite concept."""
    sites = []
    if limb:
        sites.append(concept(coding(SCT, "61685007" if limb == "lower" else "53120007")))
    if side:
        sites.append(concept(coding(SCT, side)))
    return service_request(
        pid,
        sid,
        concept(coding(CPT, cpt), text=text),
        category="103693007",
        reasons=reasons,
        body_sites=sites,
        quantity=quantity,
        **kw,
    )


def mri_order(pid: str, sid: str, cpt: str = "72148", **kw) -> dict[str, Any]:
    text = {"72148": "MRI LUMBAR SPINE WO CONTRAST", "72197": "MRI LUMBOSACRAL PLEXUS (PELVIS) WO/W CONTRAST"}
    return service_request(pid, sid, concept(coding(CPT, cpt), text=text[cpt]), category="363679005", **kw)


def referral(pid: str, sid: str, code: str, text: str, **kw) -> dict[str, Any]:
    return service_request(pid, sid, concept(coding(SCT, code), text=text), category="3457005", **kw)


# --------------------------------------------------------------------------------------------
# Text snippets (brief section 6 and 7; vendors' wording varied on purpose)
# --------------------------------------------------------------------------------------------

S6_CONCLUSION = (
    "Abnormal study. Electrodiagnostic evidence of a left L5 radiculopathy with active denervation "
    "(axon loss). No evidence of lumbosacral plexopathy, fibular or tibial mononeuropathy, polyneuropathy "
    "or myopathy."
)
NORMAL_NCS_LEFT = (
    "Left fibular motor (EDB) and tibial motor (AH) responses have normal distal latencies, amplitudes and "
    "conduction velocities. Left sural and superficial fibular sensory responses are normal. "
    "Left tibial H-reflex latency is normal."
)
LOW_BACK_PAIN_NOTE = (
    "Follow-up for chronic low back pain after L5-S1 fusion (2019). Pain is axial, worse with standing, "
    "5/10. No leg pain, numbness or weakness reported. Exam: strength 5/5 in both legs, reflexes "
    "symmetric. Plan: EMG/NCS of both lower extremities."
)


# --------------------------------------------------------------------------------------------
# Scenario model
# --------------------------------------------------------------------------------------------


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
        return SERVICES[self.service][0]

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


def mismatch(order_id: str, recommended: Iterable[str] = ()) -> dict[str, Any]:
    """Issue 4 step 7: 6 dx updates + spine referral + pain-management referral + delete of the order."""
    return card(
        "emg-dx-mismatch",
        "warning",
        [*CANDIDATE_DX, "308482002", "306109009"],
        recommended,
        order=f"ServiceRequest/{order_id}",
        deletes=[f"ServiceRequest/{order_id}"],
    )


def link(order_id: str, code: str) -> dict[str, Any]:
    return card("emg-dx-link", "info", [code], order=f"ServiceRequest/{order_id}", deletes=[])


M47816 = icd("M47.816")
RED_FLAGS = card("red-flags", "critical", ["72148", "308482002"])
MRI_INFO = card("mri", "info", ["72148", "72197"], ["72148"])
MRI_WARN = card("mri", "warning", ["72148", "72197"], ["72148"])
CONSERVATIVE_PT = card("conservative-care", "info", ["306170007"])
ESI = card("esi", "info", ["64483"])


# --------------------------------------------------------------------------------------------
# Patient-view scenarios (issue 3, rules A0-A5; brief scenarios 1-8, 14, 18-20)
# --------------------------------------------------------------------------------------------


def s01() -> Scenario:
    p = "pt-s01"
    s = Scenario(
        "01-l5-no-mri",
        "1",
        PV,
        p,
        "52 M, 4 wk left leg pain, EMG 2 wk ago L5 with active denervation, no MRI, no PT: A2 info "
        "(72148; plexus 72197 second line) + A3 info (PT 306170007); no A0/A1; the negated second sentence "
        "must not cancel the first.",
    )
    form = emg_text(
        "INDICATION: 52-year-old man with left buttock and lateral leg pain radiating to the dorsum of the "
        "foot for about 2 weeks. Evaluate for left lumbosacral radiculopathy versus fibular neuropathy.",
        NORMAL_NCS_LEFT,
        "Fibrillation potentials and positive sharp waves (2+) in the left tibialis anterior, tibialis "
        "posterior and gluteus medius, and in the left low lumbar paraspinal muscles. Reduced recruitment "
        "in the left tibialis anterior. Left medial gastrocnemius and vastus lateralis are normal.",
        S6_CONCLUSION,
    )
    s.add(
        emg_report(p, "s01-emg", "2026-01-01", conclusion=S6_CONCLUSION, cpt=["95886"], form=form),
        condition(p, "s01-radic", icd("M54.17"), "2025-12-15", recorded="2025-12-22"),
        encounter(p, "s01-enc", "2025-12-22", "Left leg pain"),
    )
    return s.expect(MRI_INFO, CONSERVATIVE_PT)


def s02() -> Scenario:
    p = "pt-s02"
    concl = "No electrodiagnostic evidence of lumbosacral radiculopathy. Normal study."
    form = emg_text(
        "REASON FOR STUDY: Right posterior thigh and calf pain for 5 weeks.",
        "Right fibular and tibial motor and sural and superficial fibular sensory responses are normal.",
        "No spontaneous activity in any muscle tested, including the right lumbar paraspinals. Motor unit "
        "morphology and recruitment are normal throughout.",
        concl,
    )
    return Scenario(
        "02-emg-normal",
        "2",
        PV,
        p,
        "EMG normal: no Rule-A card.",
    ).add(
        emg_report(
            p, "s02-emg", "2025-12-18", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY", form=form
        ),
        condition(p, "s02-sciatica", icd("M54.41"), "2025-12-05"),
    )


def s03() -> Scenario:
    p = "pt-s03"
    concl = (
        "Right S1 radiculopathy with active denervation in medial gastrocnemius and soleus; absent right "
        "H-reflex."
    )
    return Scenario(
        "03-s1-not-l5",
        "3",
        PV,
        p,
        "S1 not L5: no L5 card (the optional generic-radiculopathy variant is not configured).",
    ).add(
        emg_report(
            p,
            "s03-emg",
            "2025-12-22",
            conclusion=concl,
            text="EMG/NCS RIGHT LOWER EXTREMITY",
            cpt=["95886", "95910"],
        ),
        condition(p, "s03-radic", icd("M54.17"), "2025-11-30"),
    )


def s04() -> Scenario:
    p = "pt-s04"
    concl = S6_CONCLUSION.replace("left L5", "right L5")
    return Scenario(
        "04-emg-too-old",
        "4",
        PV,
        p,
        "EMG too old (2024-10-01, 15.5 mo > 365 d): no A-card; the brief's optional 'last EMG > 12 mo' info "
        "card is not expected (cards: []).",
    ).add(
        emg_report(
            p, "s04-emg", "2024-10-01", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY", cpt=["95886"]
        ),
        condition(p, "s04-radic", icd("M54.16"), "2024-09-05"),
    )


def s05() -> Scenario:
    p = "pt-s05"
    concl = (
        "Left L5 radiculopathy, subacute, with axon loss: fibrillation potentials and positive sharp waves "
        "in "
        "the left tibialis anterior, extensor hallucis longus and L5 paraspinal muscles. Sensory responses "
        "are preserved."
    )
    return (
        Scenario(
            "05-red-flags",
            "5",
            PV,
            p,
            "Red flags (R33.9 onset 2026-01-13 + exam 'new saddle anesthesia, decreased rectal tone'): A0 "
            "critical only (emergency MRI 72148 + neurosurgery referral 308482002); A3/A4 suppressed and, "
            "per "
            "issue 3 ('suppresses the routine cards'), A2 as well.",
        )
        .add(
            emg_report(p, "s05-emg", "2026-01-05", conclusion=concl, category_en=False),
            condition(p, "s05-sciatica", icd("M54.42"), "2025-12-22"),
            condition(p, "s05-retention", icd("R33.9"), "2026-01-13", category="encounter-diagnosis"),
            exam(p, "s05-exam", "2026-01-13", "new saddle anesthesia, decreased rectal tone"),
            encounter(p, "s05-ed", "2026-01-13", "Urinary retention, perineal numbness", emergency=True),
        )
        .expect(RED_FLAGS)
    )


def s06() -> Scenario:
    p = "pt-s06"
    concl = (
        "Findings are consistent with an acute left L5 radiculopathy with ongoing denervation (fibrillations "
        "and positive sharp waves in tibialis anterior, tibialis posterior and gluteus medius). The left "
        "superficial fibular sensory response is normal, which argues against a fibular neuropathy."
    )
    return (
        Scenario(
            "06-red-flags-negated",
            "6",
            PV,
            p,
            "As #1 plus a note 'Denies saddle anesthesia, bowel or bladder incontinence. No urinary "
            "retention.': "
            "no A0; A2 + A3 as in #1.",
        )
        .add(
            emg_report(p, "s06-emg", "2026-01-02", conclusion=concl, cpt=["95886"]),
            condition(p, "s06-radic", icd("M54.17"), "2025-12-15"),
            note(
                p,
                "s06-note",
                "2026-01-14",
                "Follow-up of left L5 radiculopathy. Left leg pain 6/10, radiating to the dorsum of the "
                "foot. "
                "Denies saddle anesthesia, bowel or bladder incontinence. No urinary retention. "
                "Strength 5/5 except left EHL 4+/5. Plan: discuss imaging and therapy.",
            ),
            encounter(p, "s06-enc", "2026-01-14", "Left leg pain"),
        )
        .expect(MRI_INFO, CONSERVATIVE_PT)
    )


def s07() -> Scenario:
    p = "pt-s07"
    concl = (
        "Severe left L5 radiculopathy with active axon loss: profuse fibrillation potentials in the tibialis "
        "anterior and extensor hallucis longus with markedly reduced recruitment. Normal sural and "
        "superficial fibular sensory responses and no conduction block across the fibular head."
    )
    form = emg_text(
        "HISTORY: Left foot drop noticed 1 week ago, preceded by left sciatica.",
        "Left fibular motor response recorded at tibialis anterior is reduced in amplitude (1.1 mV) without "
        "conduction block at the fibular head. Sural and superficial fibular sensory responses are normal.",
        "Profuse fibrillation potentials and positive sharp waves in the left tibialis anterior, extensor "
        "hallucis longus and tibialis posterior; few in the L5 paraspinals. Markedly reduced recruitment.",
        concl,
        header="EMG / NERVE CONDUCTION REPORT",
    )
    return (
        Scenario(
            "07-progressive-foot-drop",
            "7",
            PV,
            p,
            "Progressive foot drop: A1 warning (urgent MRI + spine-surgery referral), A2 upgraded to "
            "warning, "
            "A3 suppressed, no A0; A5 fires as warning because issue 3 lists 'or A1' ('warning ... with "
            "A1'); "
            "A1 and A5 both carry the 308482002 referral (each card is self-contained).",
        )
        .add(
            emg_report(p, "s07-emg", "2026-01-08", conclusion=concl, cpt=["95886"], form=form),
            condition(p, "s07-footdrop", icd("M21.372"), "2026-01-08", category="encounter-diagnosis"),
            exam(
                p, "s07-exam", "2026-01-12", "L ankle dorsiflexion 2/5, worsening over 1 week", "Motor exam"
            ),
            encounter(p, "s07-enc", "2026-01-12", "Left foot drop"),
        )
        .expect(
            # The A1 card explains the urgency; the orders sit on the MRI and referral cards, never twice.
            card("motor-deficit", "warning", []),
            MRI_WARN,
            card("surgical-referral", "warning", ["308482002"]),
        )
    )


def s08() -> Scenario:
    p = "pt-s08"
    concl = (
        "Left L5 radiculopathy with evidence of ongoing denervation (positive sharp waves in tibialis "
        "anterior "
        "and tibialis posterior) and early reinnervation. No evidence of a peripheral polyneuropathy."
    )
    return (
        Scenario(
            "08-eight-weeks-pt-done-mri-herniation",
            "8",
            PV,
            p,
            "8 wk (onset 2025-11-18 = 58 d), PT done, MRI L4-5 extrusion compressing L5, no ESI: A4 info "
            "(TFESI "
            "64483) + A5 info (spine referral; microdiscectomy 63030 named in detail only); no A2 (MRI "
            "present).",
        )
        .add(
            emg_report(p, "s08-emg", "2025-12-01", conclusion=concl, cpt=["95886", "95910"]),
            condition(p, "s08-radic", icd("M51.16"), "2025-11-18"),
            procedure(p, "s08-pt-eval", "97162", "2025-12-05"),
            procedure(p, "s08-pt-ex", "97110", "2025-12-19"),
            mri_report(
                p,
                "s08-mri",
                "2026-01-05",
                "Left paracentral L4-5 extrusion compressing the traversing left L5 nerve root. "
                "Mild facet arthropathy at L4-5 and L5-S1. No high-grade canal stenosis.",
            ),
            referral(
                p, "s08-pt-ref", "306170007", "Physical therapy", status="completed", authored="2025-12-02"
            ),
            mri_order(p, "s08-mri-order", status="completed", authored="2025-12-30"),
            encounter(p, "s08-enc", "2026-01-09", "Persistent left leg pain after physical therapy"),
        )
        .expect(ESI, card("surgical-referral", "info", ["308482002"]))
    )


def s14() -> Scenario:
    p = "pt-s14"
    concl_new = "No electrodiagnostic evidence of radiculopathy."
    form = emg_text(
        "INDICATION: Left leg paresthesias.",
        NORMAL_NCS_LEFT,
        "Needle examination of the left lower limb and lumbar paraspinal muscles shows no spontaneous "
        "activity and normal motor units.",
        concl_new + " Corrected report: the previous version was filed against the wrong study.",
    )
    return Scenario(
        "14-emg-entered-in-error-corrected",
        "14",
        PV,
        p,
        "EMG-L5+ report entered-in-error, corrected version (same identifier) negative: no Rule-A card "
        "(latest valid version is negative).",
    ).add(
        emg_report(
            p,
            "s14-emg-v1",
            "2025-12-10",
            conclusion=S6_CONCLUSION,
            status="entered-in-error",
            accession="EMG-25-1187",
        ),
        emg_report(
            p,
            "s14-emg-v2",
            "2025-12-10",
            conclusion=concl_new,
            status="corrected",
            accession="EMG-25-1187",
            issued="2025-12-12T10:05:00-05:00",
            form=form,
        ),
        condition(p, "s14-sciatica", icd("M54.42"), "2025-11-25"),
    )


def s18() -> Scenario:
    p = "pt-s18"
    concl = "Chronic left L5-S1 radiculopathy with ongoing denervation."
    return (
        Scenario(
            "18-range-notation",
            "18",
            PV,
            p,
            "Range notation 'L5-S1': Rule A positive, confidence low, detail notes 'multi-level/disc-level "
            "notation - confirm root'; EMG coded with a local code only (text path); D = 28 d -> A2 info + "
            "A3.",
        )
        .add(
            emg_report(
                p,
                "s18-emg",
                "2026-01-06",
                conclusion=concl,
                text="EMG/NCS BILATERAL LOWER EXTREMITIES",
                loinc=False,
                local_code="NEU-EMG-BLE",
                category_en=False,
            ),
            condition(p, "s18-sciatica", icd("M54.42"), "2025-12-18"),
        )
        .expect(MRI_INFO, CONSERVATIVE_PT)
    )


def s19() -> Scenario:
    p = "pt-s19"
    form = emg_text(
        "REASON FOR REFERRAL: r/o left L5 radiculopathy. Left lateral calf numbness for 3 weeks.",
        NORMAL_NCS_LEFT,
        "No abnormal spontaneous activity in left L5 or S1 myotomes or lumbar paraspinals. Normal motor unit "
        "potentials and recruitment.",
        "Normal study.",
    )
    return Scenario(
        "19-indication-only-mentions-l5",
        "19",
        PV,
        p,
        "Only the REASON FOR REFERRAL mentions L5; IMPRESSION: Normal study (presentedForm only, no "
        "conclusion): no Rule-A card (section scoping).",
    ).add(
        emg_report(p, "s19-emg", "2026-01-07", conclusion=None, form=form),
        condition(p, "s19-lbp", icd("M54.42"), "2025-12-20"),
    )


def s20a() -> Scenario:
    p = "pt-s20a"
    concl = "Left fibular neuropathy at the fibular head with axon loss; no evidence of L5 radiculopathy."
    return Scenario(
        "20-a-fibular-neuropathy-mimic",
        "20a",
        PV,
        p,
        "Peroneal (fibular) neuropathy mimic: no card.",
    ).add(
        emg_report(p, "s20a-emg", "2025-12-29", conclusion=concl, cpt=["95886", "95910"]),
        condition(p, "s20a-fibular", icd("G57.32"), "2025-12-01"),
    )


def s20b() -> Scenario:
    p = "pt-s20b"
    impression = "Chronic left L5 radiculopathy without active denervation; chronic neurogenic MUAP changes."
    form = emg_html(
        "Chronic left leg pain since September 2025; evaluate for L5 radiculopathy.",
        "Left fibular and tibial motor and sural and superficial fibular sensory responses are normal.",
        "Long-duration, high-amplitude polyphasic motor units with reduced recruitment in the left tibialis "
        "anterior, tibialis posterior and gluteus medius. No fibrillation potentials or positive sharp "
        "waves.",
        impression,
    )
    return (
        Scenario(
            "20-b-chronic-l5-no-active-denervation",
            "20b",
            PV,
            p,
            "Chronic L5 without active denervation (text/html presentedForm only): Rule A positive, "
            "chronicity chronic; D = 136 d >= 84, PT done, MRI compressive, no ESI -> A4 info + A5 warning.",
        )
        .add(
            emg_report(p, "s20b-emg", "2025-12-15", conclusion=None, form=form, form_type="text/html"),
            condition(p, "s20b-radic", icd("M54.17"), "2025-09-01"),
            procedure(p, "s20b-pt-eval", "97162", "2025-10-01"),
            procedure(p, "s20b-pt-ex", "97110", "2025-10-29"),
            mri_report(
                p,
                "s20b-mri",
                "2025-11-20",
                "Left subarticular L4-5 disc protrusion with moderate lateral recess stenosis compressing "
                "the "
                "traversing left L5 nerve root.",
            ),
            referral(
                p, "s20b-pt-ref", "306170007", "Physical therapy", status="completed", authored="2025-09-24"
            ),
        )
        .expect(ESI, card("surgical-referral", "warning", ["308482002"]))
    )


def x21() -> Scenario:
    p = "pt-x21"
    return (
        Scenario(
            "21-pv-red-flags-without-emg",
            "x-pv-red-flags-without-emg",
            PV,
            p,
            "Brief 4.1 A0 'any patient, EMG or not': coded cauda equina syndrome G83.4 2 days ago, no EMG -> "
            "red-flags critical only.",
        )
        .add(
            condition(p, "x21-ces", icd("G83.4"), "2026-01-14", category="encounter-diagnosis"),
            condition(p, "x21-lbp", icd("M54.50"), "2025-12-30"),
            exam(
                p,
                "x21-exam",
                "2026-01-14",
                "Saddle anesthesia to pinprick, decreased rectal tone. PVR 650 mL.",
            ),
            encounter(p, "x21-ed", "2026-01-14", "Urinary retention and perineal numbness", emergency=True),
        )
        .expect(RED_FLAGS)
    )


def x22() -> Scenario:
    p = "pt-x22"
    concl = (
        "Right L5 radiculopathy with active denervation (fibrillation potentials in the right tibialis "
        "anterior and tibialis posterior, positive sharp waves in the right L5 paraspinal muscles)."
    )
    return (
        Scenario(
            "22-pv-prior-lumbar-surgery",
            "x-pv-prior-lumbar-surgery",
            PV,
            p,
            "Issue 3 A2: prior lumbar surgery (63030 in 2021) -> MRI suggestion is 72158 instead of 72148; "
            "D = 26 d -> A2 info + A3 info.",
        )
        .add(
            emg_report(p, "x22-emg", "2025-12-30", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY"),
            condition(p, "x22-radic", icd("M54.16"), "2025-12-20"),
            procedure(p, "x22-laminotomy", "63030", "2021-06-14", text="Right L4-5 microdiscectomy"),
        )
        .expect(card("mri", "info", ["72158", "72197"], ["72158"]), CONSERVATIVE_PT)
    )


def x23() -> Scenario:
    p = "pt-x23"
    concl = (
        "Electrodiagnostic findings support a left L5 radiculopathy with acute denervation in L5-innervated "
        "muscles (tibialis anterior, peroneus longus, tibialis posterior)."
    )
    return (
        Scenario(
            "23-pv-mri-ordered-pt-started",
            "x-pv-mri-ordered-pt-started",
            PV,
            p,
            "Issue 3 A2/A3: lumbar MRI already ordered (active) and PT started 6 days ago -> no mri card; A3 "
            "info without a PT suggestion.",
        )
        .add(
            emg_report(p, "x23-emg", "2026-01-07", conclusion=concl, cpt=["95886"]),
            condition(p, "x23-radic", icd("M54.17"), "2025-12-26"),
            procedure(p, "x23-pt-eval", "97161", "2026-01-09"),
            mri_order(p, "x23-mri-order", status="active", authored="2026-01-12", reasons=[icd("M54.17")]),
        )
        .expect(card("conservative-care", "info"))
    )


# --------------------------------------------------------------------------------------------
# l5-radiculopathy-order-select (issue 3)
# --------------------------------------------------------------------------------------------


def _l5_chart(s: Scenario, emg_date: str, onset: str, concl: str, code: str = "M54.17") -> Scenario:
    p = s.pid
    return s.add(
        emg_report(p, f"{p}-emg", emg_date, conclusion=concl, cpt=["95886"]),
        condition(p, f"{p}-radic", icd(code), onset),
    )


def x24() -> Scenario:
    p = "pt-x24"
    s = Scenario(
        "24-os-lumbar-mri-documentation",
        "x-os-mri-documentation",
        L5_OS,
        p,
        "Issue 3 order-select: draft lumbar MRI 72148 selected with an EMG-proven L5 radiculopathy on file "
        "-> "
        "mri-documentation info card (EMG date, duration, neuro findings); no suggestions.",
    )
    _l5_chart(
        s,
        "2026-01-05",
        "2025-11-20",
        "Electrodiagnostic evidence of a right L5 radiculopathy with fibrillation potentials and positive "
        "sharp waves in the right tibialis anterior, peroneus longus and tibialis posterior; normal right "
        "superficial fibular SNAP.",
        "M54.16",
    )
    s.add(
        exam(
            p,
            "x24-exam",
            "2026-01-05",
            "Right EHL 4/5, ankle dorsiflexion 4+/5, decreased pinprick over the dorsum of the right foot; "
            "reflexes symmetric.",
        ),
        procedure(p, "x24-pt-eval", "97161", "2025-12-01"),
    )
    s.draft(
        mri_order(p, "x24-mri", reasons=[icd("M54.16")], reason_refs=[f"DiagnosticReport/{p}-emg"]),
        selected=["x24-mri"],
    )
    return s.expect(card("mri-documentation", "info"))


def x25() -> Scenario:
    p = "pt-x25"
    s = Scenario(
        "25-os-plexus-mri-documentation",
        "x-os-plexus-mri-documentation",
        L5_OS,
        p,
        "Issue 3 order-select: plexus MRI 72197 selected (PT referral in the bundle, not selected) -> "
        "mri-documentation info only.",
    )
    _l5_chart(
        s,
        "2025-12-20",
        "2025-12-01",
        "Left L5 radiculopathy with axonal loss (fibrillations 1+ in tibialis anterior and gluteus medius).",
    )
    s.draft(
        mri_order(p, "x25-plexus-mri", "72197", reasons=[icd("M54.17")]),
        referral(
            p, "x25-pt-ref", "306170007", "Physical therapy evaluation and treatment", reasons=[icd("M54.17")]
        ),
        selected=["x25-plexus-mri"],
    )
    return s.expect(card("mri-documentation", "info"))


def x26() -> Scenario:
    p = "pt-x26"
    s = Scenario(
        "26-os-esi-before-6-weeks",
        "x-os-esi-before-6-weeks",
        L5_OS,
        p,
        "Issue 3 order-select: TFESI 64483 selected at 26 d of symptoms (PT started 13 d ago) -> esi-timing "
        "info.",
    )
    _l5_chart(
        s,
        "2025-12-29",
        "2025-12-20",
        "Acute left L5 radiculopathy with active denervation in the tibialis anterior and extensor hallucis "
        "longus.",
    )
    s.add(procedure(p, "x26-pt-eval", "97161", "2026-01-02"))
    s.draft(
        service_request(
            p,
            "x26-tfesi",
            concept(coding(CPT, "64483"), text="LEFT L5 TRANSFORAMINAL EPIDURAL STEROID INJECTION"),
            category="387713003",
            reasons=[icd("M54.17")],
        ),
        selected=["x26-tfesi"],
    )
    return s.expect(card("esi-timing", "info"))


def x27() -> Scenario:
    p = "pt-x27"
    s = Scenario(
        "27-os-esi-after-8-weeks",
        "x-os-esi-after-8-weeks",
        L5_OS,
        p,
        "Issue 3 order-select: TFESI selected after 92 d of symptoms and 80 d of PT, MRI on file -> no card.",
    )
    _l5_chart(
        s,
        "2025-11-10",
        "2025-10-15",
        "Left L5 radiculopathy with ongoing denervation and reduced recruitment in L5 myotome muscles.",
    )
    s.add(
        procedure(p, "x27-pt-eval", "97162", "2025-10-27"),
        mri_report(
            p,
            "x27-mri",
            "2025-12-15",
            "Left paracentral L4-5 disc protrusion contacting and displacing the traversing left L5 nerve "
            "root.",
        ),
    )
    s.draft(
        service_request(
            p,
            "x27-tfesi",
            concept(coding(CPT, "64483"), text="LEFT L5 TRANSFORAMINAL EPIDURAL STEROID INJECTION"),
            category="387713003",
            reasons=[icd("M54.17")],
        ),
        selected=["x27-tfesi"],
    )
    return s


def x28() -> Scenario:
    p = "pt-x28"
    s = Scenario(
        "28-os-surgery-referral-without-mri",
        "x-os-surgery-referral-without-mri",
        L5_OS,
        p,
        "Issue 3 order-select: neurosurgery referral 308482002 selected with no MRI on file -> "
        "mri-before-surgery info ('MRI comes first') suggesting a lumbar MRI 72148.",
    )
    _l5_chart(
        s,
        "2025-11-18",
        "2025-10-20",
        "Left L5 radiculopathy with active denervation; chronic reinnervation changes in tibialis anterior.",
    )
    s.add(procedure(p, "x28-pt-eval", "97162", "2025-11-03"))
    s.draft(
        referral(
            p, "x28-ns-ref", "308482002", "Referral to spine surgery (neurosurgery)", reasons=[icd("M54.17")]
        ),
        selected=["x28-ns-ref"],
    )
    return s.expect(card("mri-before-surgery", "info", ["72148"]))


def x29() -> Scenario:
    p = "pt-x29"
    s = Scenario(
        "29-os-mri-with-normal-emg",
        "x-os-mri-with-normal-emg",
        L5_OS,
        p,
        "Issue 3 order-select: lumbar MRI selected but the EMG is normal -> no card.",
    )
    s.add(
        emg_report(
            p,
            "x29-emg",
            "2025-12-16",
            conclusion="Normal study. No electrodiagnostic evidence of a left lumbosacral radiculopathy, "
            "plexopathy or peripheral neuropathy.",
        ),
        condition(p, "x29-sciatica", icd("M54.42"), "2025-11-01"),
    )
    s.draft(mri_order(p, "x29-mri", reasons=[icd("M54.42")]), selected=["x29-mri"])
    return s


def x30() -> Scenario:
    p = "pt-x30"
    s = Scenario(
        "30-os-red-flags",
        "x-os-red-flags",
        L5_OS,
        p,
        "Issue 3: red flags produce the critical card in the order-select service too (new urinary "
        "retention + perineal numbness); the selected PT referral has no rule of its own.",
    )
    _l5_chart(
        s,
        "2026-01-06",
        "2025-12-28",
        "Left L5 radiculopathy with fibrillation potentials in the tibialis anterior and tibialis posterior.",
        "M54.42",
    )
    s.add(
        condition(p, "x30-retention", icd("R33.9"), "2026-01-14", category="encounter-diagnosis"),
        note(
            p,
            "x30-note",
            "2026-01-14",
            "Telephone triage: reports new difficulty initiating urination since yesterday and numbness in "
            "the perineum when wiping. Advised to present to the emergency department.",
            "Telephone encounter note",
        ),
    )
    s.draft(
        referral(
            p, "x30-pt-ref", "306170007", "Physical therapy evaluation and treatment", reasons=[icd("M54.42")]
        ),
        selected=["x30-pt-ref"],
    )
    return s.expect(RED_FLAGS)


# --------------------------------------------------------------------------------------------
# EMG/NCS necessity (issue 4; brief scenarios 9-17 and the extra unit tests)
# --------------------------------------------------------------------------------------------


def _b_history(s: Scenario, *, normal_exam: bool = True) -> Scenario:
    """Scenario 9's chart: M47.816 on the problem list, prior EMG 2022, MRI 2025-09-02, post L5-S1 PLIF."""
    p = s.pid
    s.add(
        condition(p, f"{p}-spondylosis", icd("M47.816"), "2021-04-12"),
        condition(p, f"{p}-fusion", icd("Z98.1"), "2019-05-14"),
        procedure(p, f"{p}-plif", "22630", "2019-05-14", text="L5-S1 posterior lumbar interbody fusion"),
        procedure(p, f"{p}-prior-emg", "95886", "2022-03-10"),
        procedure(p, f"{p}-prior-ncs", "95910", "2022-03-10"),
        mri_report(
            p,
            f"{p}-mri",
            "2025-09-02",
            "Post L5-S1 PLIF with intact hardware. Mild L5/S1 disc bulge without foraminal narrowing. "
            "Mild L4-5 facet arthropathy. No canal stenosis.",
        ),
        note(p, f"{p}-note", "2026-01-08", LOW_BACK_PAIN_NOTE),
        encounter(p, f"{p}-enc", "2026-01-08", "Chronic low back pain"),
    )
    if normal_exam:
        s.add(
            exam(
                p,
                f"{p}-exam-2025",
                "2025-10-02",
                "Lower extremity strength 5/5 throughout. Reflexes 2+ and symmetric at knees and ankles. "
                "Sensation intact to light touch. Straight-leg raise negative bilaterally.",
            )
        )
    return s


def _bilateral_edx(p: str, prefix: str, reasons, ncs: str = "95910") -> list[dict[str, Any]]:
    return [
        edx_order(
            p, f"{prefix}-emg", "95886", "EMG BILATERAL LOWER EXTREMITIES", reasons=reasons, quantity=2
        ),
        edx_order(
            p, f"{prefix}-ncs", ncs, "NERVE CONDUCTION STUDIES BILATERAL LOWER EXTREMITIES", reasons=reasons
        ),
    ]


def s09() -> Scenario:
    p = "pt-s09"
    s = Scenario(
        "09-edx-core-mismatch",
        "9",
        B_SIGN,
        p,
        "Core mismatch (95886 x2 + 95910, LE bilateral, reason M47.816 only): Rule B warning, one per EDX "
        "order (issue 4 step 6); needle EMG concurrent yes; prior EMG 2022-03-10 > 12 mo; MRI summary; no "
        "deficits -> S1 not recommended; S2/S3/S4 offered.",
    )
    _b_history(s).draft(*_bilateral_edx(p, "s09", [M47816]))
    return s.expect(mismatch("s09-emg"), mismatch("s09-ncs"))


def s10() -> Scenario:
    p = "pt-s10"
    s = Scenario(
        "10-edx-radiculopathy-on-order",
        "10",
        B_SIGN,
        p,
        "reasonCode M47.816 and M54.16 on the order: no card (not 'only M47.816').",
    )
    _b_history(s).draft(*_bilateral_edx(p, "s10", [M47816, icd("M54.16")]))
    return s


def s11() -> Scenario:
    p = "pt-s11"
    s = Scenario(
        "11-edx-radiculopathy-on-problem-list",
        "11",
        B_SIGN,
        p,
        "Order reason M47.816 only, M51.17 active on the problem list: Rule B info 'link M51.17 to the "
        "order' (emg-dx-link, update adding M51.17), no mismatch warning.",
    )
    s.add(
        condition(p, "s11-spondylosis", icd("M47.816"), "2023-02-01"),
        condition(p, "s11-disc-radic", icd("M51.17"), "2025-10-20"),
        mri_report(
            p,
            "s11-mri",
            "2025-11-14",
            "Right paracentral L5-S1 disc protrusion contacting the traversing S1 root.",
        ),
    )
    s.draft(
        edx_order(p, "s11-emg", "95886", "EMG/NCS RIGHT LOWER EXTREMITY", reasons=[M47816], side="24028007")
    )
    return s.expect(link("s11-emg", "M51.17"))


def s12() -> Scenario:
    p = "pt-s12"
    s = Scenario(
        "12-edx-upper-extremity",
        "12",
        B_SIGN,
        p,
        "Upper-extremity EMG (bodySite 53120007, text RIGHT UPPER EXTREMITY) with M47.816: no card (out of "
        "scope).",
    )
    s.add(
        condition(p, "s12-spondylosis", icd("M47.816"), "2022-06-01"),
        condition(p, "s12-dm", icd("E11.9"), "2018-03-15"),
    )
    s.draft(
        edx_order(
            p,
            "s12-emg",
            "95886",
            "EMG/NCS RIGHT UPPER EXTREMITY",
            reasons=[M47816],
            limb="upper",
            side="24028007",
        )
    )
    return s


def s13() -> Scenario:
    p = "pt-s13"
    s = Scenario(
        "13-edx-entered-in-error-radiculopathy",
        "13",
        B_SIGN,
        p,
        "reasonCode M47.816 + reasonReference to Condition M54.16 entered-in-error: effective DX = {M47.816} "
        "-> Rule B warning (the erroneous Condition is not a problem-list rescue either).",
    )
    s.add(
        condition(p, "s13-spondylosis", icd("M47.816"), "2024-01-10"),
        condition(p, "s13-radic-eie", icd("M54.16"), "2025-12-29", verification="entered-in-error"),
    )
    s.draft(
        edx_order(
            p,
            "s13-emg",
            "95886",
            "EMG/NCS LEFT LOWER EXTREMITY",
            reasons=[M47816],
            side="7771000",
            reason_refs=["Condition/s13-radic-eie"],
        )
    )
    return s.expect(mismatch("s13-emg"))


def s15() -> Scenario:
    p = "pt-s15"
    s = Scenario(
        "15-edx-repeat-within-12-months",
        "15",
        B_SIGN,
        p,
        "EDX 95886/95910 done 2025-08-20, draft 95886 + 95911 with M47.816, no new deficits: Rule B warning "
        "(one per order) + line 'repeat EDX within 12 months without documented new/progressive findings'.",
    )
    s.add(
        condition(p, "s15-spondylosis", icd("M47.816"), "2023-09-01"),
        procedure(p, "s15-prior-emg", "95886", "2025-08-20"),
        procedure(p, "s15-prior-ncs", "95910", "2025-08-20"),
        exam(
            p,
            "s15-exam",
            "2026-01-06",
            "Strength 5/5 in all lower extremity myotomes. Knee and ankle reflexes 2+ symmetric. Sensation "
            "intact. Negative straight-leg raise.",
        ),
    )
    s.draft(*_bilateral_edx(p, "s15", [M47816], ncs="95911"))
    return s.expect(mismatch("s15-emg"), mismatch("s15-ncs"))


def s16() -> Scenario:
    p = "pt-s16"
    s = Scenario(
        "16-edx-new-deficits",
        "16",
        B_SIGN,
        p,
        "As #9 + exam 2026-01-10 'EHL 4/5 left, diminished left medial hamstring reflex, +SLR left at 40°': "
        "Rule B warning with S1 isRecommended=true. Exactly one candidate recommended (at-most-one); the "
        "exam "
        "localises an L5 root lesion but not its cause, so M54.16 is the most directly supported and M47.26 "
        "(spondylosis with radiculopathy) is defensible - any single candidate passes.",
    )
    _b_history(s).add(
        exam(
            p,
            "s16-exam",
            "2026-01-10",
            "EHL 4/5 left, diminished left medial hamstring reflex, +SLR left at 40°",
        )
    )
    s.draft(*_bilateral_edx(p, "s16", [M47816]))
    rec = [ANY_CANDIDATE]
    return s.expect(
        {**mismatch("s16-emg", rec), "recommended_preferred": "M54.16"},
        {**mismatch("s16-ncs", rec), "recommended_preferred": "M54.16"},
    )


def s17() -> Scenario:
    p = "pt-s17"
    s = Scenario(
        "17-ncs-only-order",
        "17",
        B_SIGN,
        p,
        "NCS-only draft (95909, no needle EMG) with M47.816 and no EMG in 12 mo: Rule B warning + 'NCS "
        "without "
        "needle EMG not recommended for radiculopathy'; criterion B 'not met'.",
    )
    s.add(condition(p, "s17-spondylosis", icd("M47.816"), "2024-05-20"))
    s.draft(edx_order(p, "s17-ncs", "95909", "NCS LEFT LOWER EXTREMITY", reasons=[M47816], side="7771000"))
    return s.expect(mismatch("s17-ncs"))


def x31() -> Scenario:
    p = "pt-x31"
    s = Scenario(
        "31-edx-reason-code-without-dot",
        "x-b-reason-code-without-dot",
        B_SIGN,
        p,
        "Brief extra test: reasonCode written 'M47816' (no dot) normalises to M47.816 -> Rule B warning.",
    )
    s.add(condition(p, "x31-spondylosis", icd("M47.816"), "2024-11-04"))
    s.draft(
        edx_order(
            p, "x31-emg", "95886", "EMG/NCS LEFT LOWER EXTREMITY", reasons=[icd("M47816")], side="7771000"
        )
    )
    return s.expect(mismatch("x31-emg"))


def x32() -> Scenario:
    p = "pt-x32"
    s = Scenario(
        "32-edx-snomed-only-reason",
        "x-b-snomed-only-reason",
        B_SIGN,
        p,
        "Brief extra test: reason is SNOMED 68859000 only -> no ICD match -> no card (no SNOMED->ICD map).",
    )
    s.add(condition(p, "x32-spondylosis", concept(coding(SCT, "68859000")), "2024-11-04"))
    s.draft(
        edx_order(
            p,
            "x32-emg",
            "95886",
            "EMG/NCS LEFT LOWER EXTREMITY",
            reasons=[concept(coding(SCT, "68859000"))],
            side="7771000",
        )
    )
    return s


def x33() -> Scenario:
    p = "pt-x33"
    s = Scenario(
        "33-edx-revoked-prior-emg-order",
        "x-b-revoked-prior-emg-order",
        B_SIGN,
        p,
        "Brief extra test: a revoked EMG ServiceRequest (2025-09-08) is ignored as 'prior EMG'; needle EMG "
        "criterion met by the draft itself; no 'repeat EDX' line -> Rule B warning.",
    )
    s.add(
        condition(p, "x33-spondylosis", icd("M47.816"), "2024-02-02"),
        service_request(
            p,
            "x33-emg-revoked",
            concept(coding(CPT, "95886"), text="EMG/NCS LEFT LOWER EXTREMITY"),
            status="revoked",
            authored="2025-09-08",
            category="103693007",
            reasons=[M47816],
        ),
    )
    s.draft(
        edx_order(p, "x33-emg", "95886", "EMG/NCS LEFT LOWER EXTREMITY", reasons=[M47816], side="7771000")
    )
    return s.expect(mismatch("x33-emg"))


def x34() -> Scenario:
    p = "pt-x34"
    s = Scenario(
        "34-edx-bundle-with-lab",
        "x-b-bundle-with-lab",
        B_SIGN,
        p,
        "Issue 4 test: EMG 95886 + NCS 95910 + unrelated lab (LOINC 2345-7), each with M47.816 -> exactly "
        "two "
        "mismatch cards (EMG and NCS orders, not the lab).",
    )
    s.add(condition(p, "x34-spondylosis", icd("M47.816"), "2023-07-19"))
    lab = service_request(
        p,
        "x34-glucose",
        concept(coding(LOINC, "2345-7"), text="GLUCOSE, SERUM"),
        category="108252007",
        reasons=[M47816],
    )
    s.draft(*_bilateral_edx(p, "x34", [M47816]), lab)
    return s.expect(mismatch("x34-emg"), mismatch("x34-ncs"))


def x35() -> Scenario:
    p = "pt-x35"
    s = Scenario(
        "35-edx-order-select-one-selected",
        "x-b-order-select-one-selected",
        B_OS,
        p,
        "Issue 4 test: order-select with two EDX drafts, selections names only the EMG -> exactly one "
        "mismatch "
        "card, for the EMG order.",
    )
    s.add(condition(p, "x35-spondylosis", icd("M47.816"), "2023-03-03"))
    s.draft(*_bilateral_edx(p, "x35", [M47816]), selected=["x35-emg"])
    return s.expect(mismatch("x35-emg"))


SCENARIOS = (
    s01, s02, s03, s04, s05, s06, s07, s08, s09, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20a, s20b,
    x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31, x32, x33, x34, x35,
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _fhir_valid(resource: dict[str, Any], where: str) -> None:
    model = get_fhir_model_class(resource["resourceType"])
    try:
        model.model_validate(resource)
    except Exception as exc:  # pydantic ValidationError; re-raise with the location
        raise AssertionError(
            f"{where}: {resource['resourceType']}/{resource.get('id')} invalid: {exc}"
        ) from exc


def validate(s: Scenario, body: dict[str, Any]) -> None:
    where = s.stem
    assert set(body) == {"hook", "hookInstance", "context", "prefetch"}, where
    assert "fhirServer" not in body, where
    uuid.UUID(body["hookInstance"])
    ctx = body["context"]
    assert ctx["userId"] == USER and ctx["patientId"] == s.pid, where
    assert set(body["prefetch"]) == set(PREFETCH_KEYS), where
    ids: set[str] = set()
    resources: list[dict[str, Any]] = []
    for key, bundle in body["prefetch"].items():
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", (where, key)
        assert bundle["total"] == len(bundle["entry"]), (where, key)
        _fhir_valid(bundle, f"{where} prefetch.{key}")
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert PREFETCH_KEY_OF[res["resourceType"]] == key, (where, key, res["id"])
            assert entry["fullUrl"].endswith(f"/{res['resourceType']}/{res['id']}"), where
            if key == "orders":
                assert res["status"] in ("active", "completed", "revoked"), (where, res["id"])
            resources.append(res)
    drafts = []
    if s.hook in ("order-select", "order-sign"):
        assert set(ctx) == {"userId", "patientId", "draftOrders"} | (
            {"selections"} if s.hook == "order-select" else set()
        )
        bundle = ctx["draftOrders"]
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection", where
        _fhir_valid(bundle, f"{where} draftOrders")
        drafts = [e["resource"] for e in bundle["entry"]]
        assert drafts, where
        for d in drafts:
            assert d["resourceType"] == "ServiceRequest", where
            assert (d["status"], d["intent"], d["authoredOn"]) == ("draft", "order", NOW), (where, d["id"])
        draft_refs = {f"ServiceRequest/{d['id']}" for d in drafts}
        if s.hook == "order-select":
            assert ctx["selections"] and set(ctx["selections"]) <= draft_refs, (where, ctx["selections"])
    else:
        assert set(ctx) == {"userId", "patientId"}, where
    for res in resources + drafts:
        _fhir_valid(res, where)
        rid = f"{res['resourceType']}/{res['id']}"
        assert rid not in ids, (where, rid)
        ids.add(rid)
        assert res["subject"] == {"reference": f"Patient/{s.pid}"}, (where, rid)
        if res["resourceType"] == "Condition":
            ver = res["verificationStatus"]["coding"][0]["code"]
            cat = res["category"][0]["coding"][0]["code"]
            if ver == "entered-in-error":
                assert "clinicalStatus" not in res, (where, rid)  # con-5
            elif cat == "problem-list-item":
                assert "clinicalStatus" in res, (where, rid)  # con-3
    for res in drafts:
        for ref in res.get("reasonReference", []):
            assert ref["reference"] in ids, (where, ref)  # resolvable without a FHIR server
    _validate_expectation(s, {d["id"] for d in drafts})


def _validate_expectation(s: Scenario, draft_ids: set[str]) -> None:
    hook, rules = SERVICES[s.service]
    assert hook == s.hook
    for c in s.cards:
        assert c["rule"] in rules, (s.stem, c["rule"])
        assert c["indicator"] in ("info", "warning", "critical"), s.stem
        rec = c["recommended"]
        assert rec == [ANY_CANDIDATE] or set(rec) <= set(c["suggested_codes"]), (s.stem, c)
        if "order" in c:
            assert c["order"].split("/", 1)[1] in draft_ids, (s.stem, c["order"])
            if s.hook == "order-select":
                assert c["order"] in s.selections, (s.stem, c["order"])
    if s.service == PV:
        assert not {"order", "deletes"} & {k for c in s.cards for k in c}, s.stem


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

YAML_HEADER = """\
# Expected cards for fhir_fixtures/scenarios/*.json -- GENERATED by fhir_fixtures/build_scenarios.py.
# Do not edit by hand: change the script and re-run it.
#
# Sources: shared/docs/clinical-brief.md (sections 4.0-4.2, 7; NOW = 2026-01-15) and issues 3 and 4
# (rule ids = card.source.topic.code, system urn:spine-cds:rule). Where they differ, the issue wins.
#
# Per fixture: file, scenario (brief number or x-<id> for extra cases), service, hook, now, cards, note.
# cards: [] means the service must return no card at all. Cards are matched by `rule` (and, for the
#   EMG/NCS services, by `order` since those rules give one card per draft order).
#   rule             source.topic.code
#   indicator        info | warning | critical
#   suggested_codes  sorted codes of the resources created by the card's suggestions (create actions:
#                    resource.code); for update actions on a draft order, the diagnosis code the update
#                    puts into reasonCode. Delete actions carry no code: see `deletes`.
#   recommended      codes of the suggestions with isRecommended = true. Only the brief / issues mark a
#                    suggestion recommended: A2's first MRI suggestion, and Rule B's dx updates when
#                    deficits or radicular symptoms are documented. Every other suggestion: not
#                    recommended. "any-one-of-candidates" = exactly one of the six candidate dx updates
#                    is recommended (recommended_preferred names the best-supported one).
#   order / deletes  (EMG/NCS services) the draft order the card is about, and the resource ids its
#                    delete suggestion removes.
"""


def build() -> dict[str, str]:
    """Return {file name: text} for every output file; validates everything first."""
    files: dict[str, str] = {}
    expectations = []
    for make in SCENARIOS:
        s = make()
        body = s.request()
        validate(s, body)
        name = f"{s.stem}.json"
        assert name not in files, name
        files[name] = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
        expectations.append(s.expectation())
    files["expected.yaml"] = YAML_HEADER + yaml.safe_dump(
        expectations, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files on disk are not up to date")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = [
            n for n, text in files.items() if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_text() != text
        ]
        extra = (
            sorted(p.name for p in OUT_DIR.glob("*.json") if p.name not in files) if OUT_DIR.is_dir() else []
        )
        for n in stale:
            print(f"stale: {n}", file=sys.stderr)
        for n in extra:
            print(f"not generated by this script: {n}", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (OUT_DIR / n).write_text(text)
    print(f"wrote {len(files)} files to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
