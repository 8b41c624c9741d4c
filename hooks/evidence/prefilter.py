"""Raw-JSON pre-filter: which resources in a prefetch could matter to a rule at all.

Validating a resource into a fhir.resources model costs about 0.1-0.2 ms, and a real chart is mostly
vitals, labs and unrelated diagnoses. This filter reads the raw JSON with the same value sets and text
patterns as the evidence extractors (it is built from them), so a site that adds a code or a phrase to a
knowledge file also widens what gets parsed; nothing here is a separate list to keep in sync. Codes and
categories are checked before any text pattern, so a vital sign or a lab costs a dict lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hooks.evidence.builder import EvidenceBuilder

# Observation categories that never hold a finding of ours unless their code names one.
_ROUTINE_CATEGORIES = frozenset(
    {"vital-signs", "laboratory", "social-history", "imaging", "therapy", "activity"}
)
_CONDITION_SETS = (
    "radiculopathy-dx",
    "radicular-symptom-dx",
    "no-radiculopathy-dx",
    "cauda-equina",
    "sphincter-red-flag",
    "sensory-red-flag",
    "weakness-red-flag",
    "foot-drop",
    "spine-surgery",
)
CARE_SETS = (
    "pt",
    "esi",
    "spine-referral",
    "pain-referral",
    "spine-surgery",
    "edx-procedure",
    "lumbar-mri",
    "plexus-mri",
)
REPORT_SETS = (
    "edx-report",
    "edx-procedure",
    "edx-category",
    "lumbar-mri",
    "plexus-mri",
    "spine-mri-document",
)


def _raw_text(*concepts: Any) -> str:
    """code.text and coding displays of raw CodeableConcepts (or lists of them)."""
    parts: list[str] = []
    for concept in concepts:
        for c in concept if isinstance(concept, list) else [concept]:
            if isinstance(c, dict):
                parts.append(str(c.get("text") or ""))
                parts += [str(x.get("display") or "") for x in c.get("coding") or [] if isinstance(x, dict)]
    return " ".join(p for p in parts if p)


def _categories(raw: dict[str, Any]) -> set[str]:
    out = set()
    for concept in raw.get("category") or []:
        for coding in concept.get("coding") or [] if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                out.add(coding["code"])
    return out


class Prefilter:
    def __init__(self, builder: EvidenceBuilder) -> None:
        terms = builder.terms
        self.terms = terms
        self.condition_codes = terms.union(_CONDITION_SETS)
        self.care_codes = terms.union(CARE_SETS)
        self.report_codes = terms.union(REPORT_SETS)
        care = builder.care.k
        self.condition_text = _union(
            care.contrast_mri_text,
            care.prior_surgery_text,
            *(t.pattern for t in builder.diagnoses.k.uncoded_radiculopathy),
        )
        self.care_text = _union(care.pt_text, care.esi_text, care.referral_text, care.prior_surgery_text)
        self.report_text = _union(builder.edx.k.edx_text, builder.imaging.k.mri_text)
        red = builder.red_flags
        motor = builder.motor.k
        diag = builder.diagnoses.k
        questions = [f.question.pattern for f in red.findings] + [q.question for q, _, _ in red.quantities]
        questions += [motor.l5_movements, motor.finding_questions, diag.radicular_question]
        questions += [builder.edx.k.impression_observation]
        self.question = _union(*questions)
        findings = [f.text.pattern for f in red.findings if f.text] + [q.text for q, _, _ in red.quantities]
        findings += [motor.foot_drop, motor.progressive, diag.radicular_symptoms, builder.edx.k.edx_text]
        findings += [p.pattern for p in motor.neuro_findings]
        self.finding = _union(*findings)
        # Notes that are not report documents are read for findings no rule looks at past its longest window.
        self.note_window_days = max(builder.windows.model_dump().values())
        # Code texts repeat across resources and patients ("Heart rate", "Hemoglobin A1c"): each pattern's
        # answer for a code text is remembered, so a vital sign or a lab costs a dict lookup, not a search
        # of a pattern of hundreds of alternatives (13-18 µs each). Same pattern, same text: same answer.
        self.question_in = _remembered(self.question)
        self.condition_text_in = _remembered(self.condition_text)
        self.care_text_in = _remembered(self.care_text)
        self.report_text_in = _remembered(self.report_text)

    def _keys(self, concepts: Any) -> list[tuple[str, str]]:
        keys = []
        for concept in concepts if isinstance(concepts, list) else [concepts]:
            for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    system = coding.get("system") if isinstance(coding.get("system"), str) else None
                    if key := self.terms.key(system, coding["code"]):
                        keys.append(key)
        return keys

    def relevant(self, raw: dict[str, Any]) -> bool:
        rtype = raw.get("resourceType")
        if rtype == "Condition":
            code = raw.get("code")
            return any(k in self.condition_codes for k in self._keys(code)) or self.condition_text_in(
                _raw_text(code)
            )
        if rtype in ("Procedure", "ServiceRequest"):
            code = raw.get("code")
            return any(k in self.care_codes for k in self._keys(code)) or (
                self.care_text_in(_raw_text(code)) or self.report_text_in(_raw_text(code))
            )
        if rtype == "Encounter":
            concepts = [*(raw.get("type") or []), raw.get("serviceType")]
            if any(k in self.care_codes for c in concepts for k in self._keys(c)):
                return True
            text = _raw_text(*concepts, raw.get("reasonCode") or [])
            return bool(self.care_text.search(text) or self.finding.search(text))
        if rtype == "DiagnosticReport":
            keys = self._keys(raw.get("code")) + self._keys(raw.get("category") or [])
            return any(k in self.report_codes for k in keys) or self.report_text_in(
                _raw_text(raw.get("code"))
            )
        if rtype == "Observation":
            if self.question_in(_raw_text(raw.get("code"))):
                return True
            if _categories(raw) & _ROUTINE_CATEGORIES:
                return False  # a vital sign, a lab, smoking status: decided without reading any value
            return bool(self.finding.search(_raw_narrative(raw)))
        return rtype in ("DocumentReference", "QuestionnaireResponse")

    def wants_attachments(self, raw: dict[str, Any], today: date) -> bool:
        """Fetch and read this kept resource's attachments? Reports: yes unless entered in error. Notes:
        EMG/NCS and MRI documents always, other notes only within the longest rule window (never all)."""
        if raw.get("status") == "entered-in-error" or raw.get("docStatus") == "entered-in-error":
            return False
        if raw.get("resourceType") != "DocumentReference":
            return True
        kind = raw.get("type")
        if any(k in self.report_codes for k in self._keys(kind)) or self.report_text.search(_raw_text(kind)):
            return True
        context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
        period = context.get("period") if isinstance(context.get("period"), dict) else {}
        when = str(period.get("start") or raw.get("date") or "")
        try:
            return (today - date.fromisoformat(when[:10])).days <= self.note_window_days
        except ValueError:
            return True  # undated: cannot tell it is old


def _union(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns if p), re.IGNORECASE)


_REMEMBERED_CHARS = 200  # longer texts (free text in a code) are searched every time, never kept


def _remembered(pattern: re.Pattern[str], entries: int = 4096) -> Callable[[str], bool]:
    """`pattern` searched in a code text, with the answers for up to `entries` short texts kept (LRU)."""

    @lru_cache(maxsize=entries)
    def short(text: str) -> bool:
        return pattern.search(text) is not None

    def found(text: str) -> bool:
        return short(text) if len(text) <= _REMEMBERED_CHARS else pattern.search(text) is not None

    return found


def _raw_narrative(raw: dict[str, Any]) -> str:
    parts = [raw.get("valueString"), _raw_text(raw.get("valueCodeableConcept"))]
    for comp in raw.get("component") or []:
        if isinstance(comp, dict):
            parts += [comp.get("valueString"), _raw_text(comp.get("code"), comp.get("valueCodeableConcept"))]
    parts += [n.get("text") for n in raw.get("note") or [] if isinstance(n, dict)]
    return " ".join(p for p in parts if isinstance(p, str))
