"""Raw-JSON pre-filter: which resources in a prefetch could matter to a rule at all.

Validating a resource into a fhir.resources model costs about 0.2 ms, and a real chart is mostly
vitals, labs and unrelated diagnoses. This filter reads the raw JSON with the same value sets and
text patterns as the evidence builder, so a site that adds a code to a knowledge file also widens
what gets parsed; nothing here is a separate list to keep in sync.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from hooks.common.knowledge import Terminology

_NARRATIVE_KEYS = ("valueString", "valueCodeableConcept", "valueBoolean", "note", "component")


def _raw_text(*concepts: Any) -> str:
    """code.text and coding displays of raw CodeableConcepts (or lists of them)."""
    parts: list[str] = []
    for concept in concepts:
        for c in concept if isinstance(concept, list) else [concept]:
            if isinstance(c, dict):
                parts.append(str(c.get("text") or ""))
                parts += [str(x.get("display") or "") for x in c.get("coding") or [] if isinstance(x, dict)]
    return " ".join(parts)


def _raw_narrative(raw: dict[str, Any]) -> str:
    parts = [raw.get("valueString"), _raw_text(raw.get("valueCodeableConcept"), raw.get("code"))]
    for comp in raw.get("component") or []:
        if isinstance(comp, dict):
            parts += [comp.get("valueString"), _raw_text(comp.get("code"), comp.get("valueCodeableConcept"))]
    parts += [n.get("text") for n in raw.get("note") or [] if isinstance(n, dict)]
    return " ".join(p for p in parts if isinstance(p, str))


class Prefilter:
    def __init__(self, terms: Terminology, config: dict[str, Any]) -> None:
        self.terms = terms
        pre = config["prefilter"]
        self.condition_codes = terms.union(pre["condition_sets"])
        self.care_codes = terms.union(pre["care_sets"])
        self.report_codes = terms.union(pre["report_sets"])
        self.care_text = re.compile(pre["care_text"], re.I)
        self.contrast_text = re.compile(config["contrast_mri_text"], re.I)
        self.report_text = re.compile(f"(?:{config['edx_text']})|(?:{config['mri_text']})", re.I)
        patterns = [
            p["pattern"]
            for group in ("red_flags", "motor_deficit", "new_deficits")
            for p in config[group]["text"]
        ]
        patterns += [
            config["radicular_symptoms"]["text"],
            config["edx_text"],
            pre["observation_text"],
            config["motor_deficit"]["l5_movements"],
        ]
        self.observation_text = re.compile("|".join(f"(?:{p})" for p in patterns), re.I)
        # Notes that are not EMG/NCS documents are read for findings no rule looks at past its longest window.
        self.note_window_days = max(int(d) for d in config["windows_days"].values())

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
            return any(k in self.condition_codes for k in self._keys(code)) or bool(
                self.contrast_text.search(_raw_text(code))
            )
        if rtype in ("Procedure", "ServiceRequest", "Encounter"):
            concepts = [c for c in (raw.get("code"), raw.get("type"), raw.get("serviceType")) if c]
            return any(k in self.care_codes for c in concepts for k in self._keys(c)) or bool(
                self.care_text.search(_raw_text(*concepts))
            )
        if rtype == "DiagnosticReport":
            keys = self._keys(raw.get("code")) + self._keys(raw.get("category") or [])
            return any(k in self.report_codes for k in keys) or bool(
                self.report_text.search(_raw_text(raw.get("code")))
            )
        if rtype == "Observation":
            if not any(k in raw for k in _NARRATIVE_KEYS):
                return False
            text = _raw_narrative(raw)
            return bool(text) and bool(self.observation_text.search(text))
        return rtype == "DocumentReference"

    def wants_attachments(self, raw: dict[str, Any], today: date) -> bool:
        """Fetch and read this kept resource's attachments? Reports: yes unless entered in error. Notes:
        EMG/NCS documents always, other notes only within the longest rule window (never every note)."""
        if raw.get("status") == "entered-in-error" or raw.get("docStatus") == "entered-in-error":
            return False
        if raw.get("resourceType") != "DocumentReference":
            return True
        kind = raw.get("type")
        if any(k in self.report_codes for k in self._keys(kind)) or self.report_text.search(_raw_text(kind)):
            return True
        context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
        period = context.get("period") if isinstance(context.get("period"), dict) else {}
        when = str(raw.get("date") or period.get("start") or "")
        try:
            return (today - date.fromisoformat(when[:10])).days <= self.note_window_days
        except ValueError:
            return True  # undated: cannot tell it is old
