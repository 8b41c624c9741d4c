"""Prefetch templates shared by the clinical services: the parts of the chart the rules read, and no more.

Minimum necessary (issue 14): every template is narrowed with search parameters that the FHIR spec and
the major EHRs support (`status`, `category`, `code`), so a chart open does not ship years of labs, vital
signs and unrelated orders. The code lists are built from the value sets (hooks/knowledge/valuesets.yaml)
that the rules and the pre-filter match, so a site that adds a local code to a knowledge file also widens
the query that fetches it; there is no second list to keep in sync. The FHIR fallback runs the same
queries; a server that answers 400 to a narrowing parameter is asked once more without it (cds/fhir.py).

What each key asks for and why the rules need it is documented in the README (prefetch section).
"""

from __future__ import annotations

from hooks.common.knowledge import Terminology
from hooks.evidence.builder import EvidenceBuilder
from hooks.evidence.prefilter import CARE_SETS, REPORT_SETS

PATIENT = "patient={{context.patientId}}"
# Rules read only active problems (ACTIVE_COND); US Core requires clinicalStatus unless entered in error.
CONDITION_STATUSES = "active,recurrence,relapse"
# Exam findings, symptom questionnaires and procedure results (EMG observations); never labs or vitals.
OBSERVATION_CATEGORIES = "exam,survey,procedure"
OBSERVATION_STATUSES = "final,amended,corrected,preliminary"
# Completed procedures are care history; active and completed orders too; draft and on-hold orders are
# orders being placed (a pended MRI silences the MRI card; a sibling EMG draft counts for the EMG/NCS rule).
PROCEDURE_STATUSES = "completed"
ORDER_STATUSES = "draft,active,on-hold,completed"
ENCOUNTER_STATUSES = "planned,arrived,triaged,in-progress,onleave,finished"
QUESTIONNAIRE_STATUSES = "completed,amended"
# Reports filed under a local code are found by their diagnostic service section instead: electroneuro
# (EMG/NCS) and radiology (MRI), in the HL7 v2 table and as the US Core LOINC categories.
REPORT_CATEGORIES = ",".join(
    [
        "http://terminology.hl7.org/CodeSystem/v2-0074|EN",
        "http://terminology.hl7.org/CodeSystem/v2-0074|RAD",
        "http://loinc.org|LP29684-5",
    ]
)
# Servers that do not hold notes, encounters or triage forms, or reject a category search, must not cost
# the clinician every other card: these keys degrade the answer (logged) instead of failing the call.
OPTIONAL_KEYS = frozenset({"documents", "encounters", "questionnaires", "reports_by_category"})


#: What each prefetch key is for (the README's prefetch table is generated from this and the templates).
PREFETCH_WHY = {
    "conditions": (
        "radiculopathy, radicular-symptom and M47.816-family diagnoses, red-flag and foot-drop codes, "
        "tumour/infection text (contrast MRI); only active problems count. Not narrowed by code: the "
        "tumour and infection check reads text"
    ),
    "reports": (
        "the EMG/NCS interpretation (the deciding study, needle EMG within 12 months) and the lumbar or "
        "plexus MRI (done? compressive lesion?)"
    ),
    "reports_by_category": (
        "EMG/NCS reports a site codes locally, found by their neurophysiology category (optional)"
    ),
    "observations": (
        "neurological exam findings (strength grades, reflexes, SLR, saddle sensation), symptom surveys "
        "and EMG result rows; never labs or vital signs"
    ),
    "documents": (
        "notes (red flags, deficits, radicular symptoms, onsets, care so far) and EMG/MRI reports filed "
        "as documents. Not narrowed by type or date: a red flag can sit in any note; only notes within "
        "the longest rule window (and every EMG/MRI document) have their attachments fetched (optional)"
    ),
    "procedures": (
        "physical therapy, epidural injections, EMG/NCS studies done, lumbar surgery (contrast MRI)"
    ),
    "orders": (
        "the same care as orders, what is already ordered (a suggestion is not repeated) and sibling "
        "EMG/NCS drafts of the same encounter"
    ),
    "encounters": ("physical therapy, pain-clinic and spine-surgery visits (optional)"),
    "questionnaires": (
        "intake and triage forms: red-flag answers, symptom onset, radicular symptoms (optional)"
    ),
}


def code_list(terms: Terminology, set_names: tuple[str, ...], exclude: frozenset[str] = frozenset()) -> str:
    """`system|code,...` of every concept of the named value sets (token search, sorted, no repeats)."""
    tokens = {
        f"{concept.system}|{concept.code}"
        for name in set_names
        if name not in exclude
        for concept in terms.sets[name].concepts
    }
    return ",".join(sorted(tokens))


def chart_prefetch(builder: EvidenceBuilder) -> dict[str, str]:
    """The shared templates, from the value sets and the report statuses the EMG and MRI readers accept."""
    terms = builder.terms
    statuses = dict.fromkeys(
        [
            *builder.edx.k.report_statuses,
            *(["preliminary"] if builder.edx.k.accept_preliminary_reports else []),
            *builder.imaging.k.report_statuses,
        ]
    )
    report_status = ",".join(statuses)
    # DiagnosticReport.category sets (EN) are not codes: the `code` search lists report and study codes.
    reports = code_list(terms, REPORT_SETS, exclude=frozenset({"edx-category"}))
    care = code_list(terms, CARE_SETS)
    return {
        "conditions": f"Condition?{PATIENT}&clinical-status={CONDITION_STATUSES}",
        "reports": f"DiagnosticReport?{PATIENT}&status={report_status}&code={reports}",
        "reports_by_category": (
            f"DiagnosticReport?{PATIENT}&status={report_status}&category={REPORT_CATEGORIES}"
        ),
        "observations": (
            f"Observation?{PATIENT}&category={OBSERVATION_CATEGORIES}&status={OBSERVATION_STATUSES}"
        ),
        "documents": f"DocumentReference?{PATIENT}&status=current",
        "procedures": f"Procedure?{PATIENT}&status={PROCEDURE_STATUSES}&code={care}",
        "orders": f"ServiceRequest?{PATIENT}&status={ORDER_STATUSES}&code={care}",
        "questionnaires": f"QuestionnaireResponse?{PATIENT}&status={QUESTIONNAIRE_STATUSES}",
    }


def encounters_prefetch(builder: EvidenceBuilder) -> str:
    """Visits typed as care the rules count (PT, injections, spine or pain referrals), not every visit."""
    care = code_list(builder.terms, CARE_SETS)
    return f"Encounter?{PATIENT}&status={ENCOUNTER_STATUSES}&type={care}"
