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

from typing import Any

from hooks.common.knowledge import Terminology

PATIENT = "patient={{context.patientId}}"
# Rules read only active problems (ACTIVE_COND); US Core requires clinicalStatus unless entered in error.
CONDITION_STATUSES = "active,recurrence,relapse"
# Exam findings, symptom questionnaires and procedure results (EMG observations); never labs or vitals.
OBSERVATION_CATEGORIES = "exam,survey,procedure"
OBSERVATION_STATUSES = "final,amended,corrected,preliminary"
# The evidence builder counts completed procedures, and active or completed orders as history.
PROCEDURE_STATUSES = "completed"
ORDER_STATUSES = "active,completed"
ENCOUNTER_STATUSES = "planned,arrived,triaged,in-progress,onleave,finished"
# Servers that do not hold notes or encounters should not cost the clinician every other card.
OPTIONAL_KEYS = frozenset({"documents", "encounters"})


def code_list(terms: Terminology, set_names: list[str], exclude: frozenset[str] = frozenset()) -> str:
    """`system|code,...` of every concept of the named value sets (token search, sorted, no repeats)."""
    tokens = {
        f"{concept.system}|{concept.code}"
        for name in set_names
        if name not in exclude
        for concept in terms.sets[name].concepts
    }
    return ",".join(sorted(tokens))


def chart_prefetch(terms: Terminology, evidence: dict[str, Any]) -> dict[str, str]:
    """The shared templates, from the value sets and the report statuses of `evidence.yaml`."""
    pre = evidence["prefilter"]
    statuses = list(evidence["report_statuses"])
    if evidence.get("accept_preliminary_reports"):
        statuses.append("preliminary")
    # DiagnosticReport.category sets (EN) are not codes: the `code` search lists report and study codes.
    reports = code_list(terms, pre["report_sets"], exclude=frozenset({"edx-category"}))
    care = code_list(terms, pre["care_sets"])
    return {
        "conditions": f"Condition?{PATIENT}&clinical-status={CONDITION_STATUSES}",
        "reports": f"DiagnosticReport?{PATIENT}&status={','.join(statuses)}&code={reports}",
        "observations": (
            f"Observation?{PATIENT}&category={OBSERVATION_CATEGORIES}&status={OBSERVATION_STATUSES}"
        ),
        "documents": f"DocumentReference?{PATIENT}&status=current",
        "procedures": f"Procedure?{PATIENT}&status={PROCEDURE_STATUSES}&code={care}",
        "orders": f"ServiceRequest?{PATIENT}&status={ORDER_STATUSES}&code={care}",
    }


def encounters_prefetch(terms: Terminology, evidence: dict[str, Any]) -> str:
    """Visits typed as care the rules count (PT, injections, spine or pain referrals), not every visit."""
    care = code_list(terms, evidence["prefilter"]["care_sets"])
    return f"Encounter?{PATIENT}&status={ENCOUNTER_STATUSES}&type={care}"
