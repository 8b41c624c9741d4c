"""Prefetch templates shared by the clinical services: the parts of the chart the rules read."""

from __future__ import annotations

# Every resource the rules read, so an EHR can send it all up front.
CHART_PREFETCH = {
    "conditions": "Condition?patient={{context.patientId}}",
    "reports": "DiagnosticReport?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "documents": "DocumentReference?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "orders": "ServiceRequest?patient={{context.patientId}}",
    "questionnaires": "QuestionnaireResponse?patient={{context.patientId}}",
}
# Servers that do not hold notes, encounters or triage forms should not cost the clinician every other card.
OPTIONAL_KEYS = frozenset({"documents", "encounters", "questionnaires"})
