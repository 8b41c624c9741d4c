"""FHIR R4 resource builders for the scenario charts and draft orders, and report text shared by scenarios.

Why builders: a scenario states only what matters to its rule (dates, codes, the report wording); the
builders fill in the rest the same way every time, so fixtures stay valid and diffs stay small.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from scenariogen.terminology import (
    ACT_CODE,
    COND_CAT,
    COND_CLINICAL,
    COND_VER,
    CPT,
    EMG_ACCESSION,
    LOCAL_PROC,
    LOINC,
    OBS_CAT,
    SCT,
    US_CORE_DOC_CAT,
    V2_0074,
    coding,
    concept,
)

# The fixed clock and the clinician of every fixture (no real clock is ever read).
NOW = "2026-01-15"
USER = "Practitioner/example-dr"


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
