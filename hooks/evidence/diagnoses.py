"""Diagnoses on the chart and radicular symptoms in its notes.

Why confirmation matters: the EMG/NCS "link it" card offers a problem-list radiculopathy as the order's
diagnosis, and outpatient coding does not code "rule out". A provisional, differential, refuted or
"r/o" entry is therefore never a radiculopathy on the chart, though it still counts as a symptom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hooks.common.fhir import codings, concept_text, condition_active, onset_date, status_code
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.chart import Chart
from hooks.evidence.model import Evidence, clip, condition_label
from hooks.evidence.narrative import Narrative, NarrativeReader


class TextCode(Strict):
    pattern: Regex
    code: str


class DiagnosisKnowledge(KnowledgeFile):
    unconfirmed_statuses: list[str]
    rule_out_text: Regex
    uncoded_radiculopathy: list[TextCode]
    radicular_symptoms: Regex
    not_radicular: Regex
    radicular_question: Regex


@dataclass
class DiagnosisEvidence:
    radiculopathy: list[Evidence] = field(default_factory=list)  # confirmed, active RADIC diagnoses
    symptom_conditions: list[Evidence] = field(default_factory=list)  # active RADIC or RSX (any confirmation)
    radicular_symptoms: list[Evidence] = field(default_factory=list)  # RSX conditions and note mentions


class DiagnosisReader:
    def __init__(self, knowledge: DiagnosisKnowledge, terms: Terminology, reader: NarrativeReader) -> None:
        self.k = knowledge
        self.terms = terms
        self.reader = reader
        self.rule_out = re.compile(knowledge.rule_out_text, re.I)
        self.question = re.compile(knowledge.radicular_question, re.I)
        self.not_radicular = re.compile(knowledge.not_radicular, re.I)
        self.uncoded = [(re.compile(t.pattern, re.I), t.code) for t in knowledge.uncoded_radiculopathy]

    def confirmed(self, cond: Any) -> bool:
        if status_code(cond.verificationStatus) in self.k.unconfirmed_statuses:
            return False
        return not self.rule_out.search(concept_text(cond.code))

    def read(self, chart: Chart, narratives: list[Narrative]) -> DiagnosisEvidence:
        out = DiagnosisEvidence()
        for cond in chart.conditions():
            if not condition_active(cond):
                continue
            pairs = codings(cond.code)
            radic = self.terms.matching("radiculopathy-dx", pairs)
            symptom = self.terms.matching("radicular-symptom-dx", pairs)
            if not (radic or symptom) and (code := self._uncoded(cond, pairs)):
                pairs, radic = [(self.terms.uri["icd10cm"], code)], [code]
            if not (radic or symptom):
                continue
            # An order's diagnosis is billed in ICD-10-CM: when the entry carries it beside SNOMED, use it.
            matched = radic or symptom
            keyed = [(self.terms.system_key(s), c) for s, c in pairs if c in matched]
            system_key, code = next(
                ((k, c) for k, c in keyed if k == "icd10cm"), keyed[0] if keyed else ("icd10cm", matched[0])
            )
            system_key = system_key or "icd10cm"
            item = Evidence(
                f"Condition/{cond.id}",
                onset_date(cond, chart.zone),
                clip(concept_text(cond.code), 120),
                condition_label({c for _, c in codings(cond.category or [])}),
                code,
                "radiculopathy" if radic else "radicular symptoms",
                self.terms.display(system_key, code) or concept_text(cond.code),
            )
            out.symptom_conditions.append(item)
            if radic and self.confirmed(cond):
                out.radiculopathy.append(item)
            if symptom:
                out.radicular_symptoms.append(item)
        for n in narratives:
            hits = [
                h
                for h in self.reader.mentions(n, self.k.radicular_symptoms)
                if not self.not_radicular.search(h)
            ]
            answers = [a.quote() for a in self.reader.answered(n, self.question) if a.reply == "yes"]
            quote = hits[0] if hits else (answers[0] if answers else None)
            if quote:
                out.radicular_symptoms.append(
                    Evidence(n.ref, n.when, clip(quote), n.kind, what="radicular symptoms")
                )
        return out

    def _uncoded(self, cond: Any, pairs: list[tuple[str | None, str | None]]) -> str | None:
        """The ICD-10-CM code a radiculopathy written only in words means (None when it is coded)."""
        if any(self.terms.system_key(s) in ("icd10cm", "snomed") for s, _ in pairs):
            return None
        text = concept_text(cond.code)
        return next((code for pattern, code in self.uncoded if pattern.search(text)), None)
