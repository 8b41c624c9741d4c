"""Care so far: physical therapy (and whether it was a course), injections, referrals, prior surgery.

Why a course and not a visit: "failed conservative care" is a reason for injection or surgery, and one PT
evaluation is not a failed course. Why prior surgery matters: after lumbar surgery the MRI needs contrast
(72158, ACR Low Back Pain variant 5), and a card that suggests 72148 to a fusion patient is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hooks.common.fhir import (
    codings,
    concept_name,
    concept_text,
    condition_active,
    condition_usable,
    onset_date,
)
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.chart import Chart
from hooks.evidence.model import Evidence, clip, written_date
from hooks.evidence.narrative import Narrative, NarrativeReader
from hooks.nlp import FINDING_EXCLUDE


class PtCourse(Strict):
    min_sessions: int
    min_span_days: int


class CareKnowledge(KnowledgeFile):
    pt_course: PtCourse
    pt_course_text: Regex
    pt_text: Regex
    esi_text: Regex
    esi_done_context: Regex
    referral_text: Regex
    prior_surgery_text: Regex
    surgery_history_context: Regex
    contrast_mri_text: Regex
    contrast_mri_exclude: Regex


@dataclass
class CareEvidence:
    pt: list[Evidence] = field(default_factory=list)  # any PT: referral, evaluation, session (oldest first)
    pt_course: list[Evidence] = field(default_factory=list)  # a documented course (non-empty = yes)
    esi: list[Evidence] = field(default_factory=list)
    spine_referral: list[Evidence] = field(default_factory=list)
    prior_surgery: list[Evidence] = field(default_factory=list)
    tumor_or_infection: list[Evidence] = field(default_factory=list)


class CareHistoryReader:
    def __init__(self, knowledge: CareKnowledge, terms: Terminology, reader: NarrativeReader) -> None:
        self.k = knowledge
        self.terms = terms
        self.reader = reader
        self.pt_text = re.compile(knowledge.pt_text, re.I)
        self.esi_text = re.compile(knowledge.esi_text, re.I)
        self.esi_done = re.compile(knowledge.esi_done_context, re.I)
        self.referral_text = re.compile(knowledge.referral_text, re.I)
        self.surgery_text = re.compile(knowledge.prior_surgery_text, re.I)
        self.surgery_context = re.compile(knowledge.surgery_history_context, re.I)
        self.contrast = re.compile(knowledge.contrast_mri_text, re.I)
        self.contrast_exclude = re.compile(knowledge.contrast_mri_exclude, re.I)

    def read(self, chart: Chart, narratives: list[Narrative]) -> CareEvidence:
        out = CareEvidence()
        pt_sessions: list[Evidence] = []
        for proc in chart.completed_procedures():
            kinds = self._kinds(proc.code)
            # Named as a clinician would: "PT visit, 2 Nov 2026", not the FHIR resource type.
            label = "PT visit" if "pt" in kinds else "Injection" if "esi" in kinds else "Procedure"
            item = self._item(chart, proc, proc.code, label)
            if "pt" in kinds:
                out.pt.append(item)
                pt_sessions.append(item)
            if "esi" in kinds:
                out.esi.append(item)
            if "referral" in kinds:
                out.spine_referral.append(item)
            if self._is_surgery(proc.code):
                out.prior_surgery.append(item)
        for sr in chart.orders(("active", "completed")):
            item = self._item(chart, sr, sr.code, "Order")
            kinds = self._kinds(sr.code)
            if "pt" in kinds:
                out.pt.append(item)
            if "esi" in kinds and sr.status == "completed":
                out.esi.append(item)
            if "referral" in kinds:
                out.spine_referral.append(item)
        for enc in chart.encounters():
            concepts = [*(enc.type or []), *([enc.serviceType] if enc.serviceType else [])]
            item = self._item(chart, enc, concepts, "Visit")
            kinds = self._kinds(concepts)
            if "pt" in kinds and enc.status in ("finished", "in-progress", "arrived"):
                out.pt.append(item)
                pt_sessions.append(item)
            if "referral" in kinds and enc.status == "finished":
                out.spine_referral.append(item)
        for cond in chart.conditions():
            if not condition_usable(cond):
                continue
            pairs = codings(cond.code)
            text = concept_text(cond.code)
            item = Evidence(
                f"Condition/{cond.id}",
                onset_date(cond, chart.zone),
                text,
                "Problem list",
                next((c for _, c in pairs if c), ""),
            )
            if self.terms.in_set("spine-surgery", pairs) or self.surgery_text.search(text):
                out.prior_surgery.append(item)
            if (
                condition_active(cond)
                and self.contrast.search(text)
                and not self.contrast_exclude.search(text)
            ):
                out.tumor_or_infection.append(item)
        for n in narratives:
            for sentence in self.reader.affirmed(
                n.prose, self.k.prior_surgery_text, FINDING_EXCLUDE - {"historical"}
            ):
                if self.surgery_context.search(sentence):
                    out.prior_surgery.append(
                        Evidence(n.ref, n.when, clip(sentence), n.kind, what="prior lumbar surgery")
                    )
                    break
            # "s/p TFESI" is history by ConText's reading, and exactly the history wanted here.
            for sentence in self.reader.affirmed(n.prose, self.k.esi_text, FINDING_EXCLUDE - {"historical"}):
                if self.esi_done.search(sentence):
                    when = written_date(sentence) or n.when
                    out.esi.append(Evidence(n.ref, when, clip(sentence), n.kind, what="epidural injection"))
                    break
            hits = self.reader.mentions(n, self.k.pt_course_text)
            if hits:
                out.pt_course.append(Evidence(n.ref, n.when, clip(hits[0]), n.kind, what="course of PT"))
        out.pt.sort(key=lambda e: e.when or date.min)
        if self._is_course(pt_sessions):
            out.pt_course.insert(0, self._course(pt_sessions))
        return out

    def _kinds(self, concept: Any) -> set[str]:
        pairs = codings(concept)
        text = concept_text(concept)
        kinds = set()
        if self.terms.in_set("pt", pairs) or self.pt_text.search(text):
            kinds.add("pt")
        if self.terms.in_set("esi", pairs) or self.esi_text.search(text):
            kinds.add("esi")
        if self.terms.in_set("spine-referral", pairs) or self.referral_text.search(text):
            kinds.add("referral")
        return kinds

    def _is_surgery(self, concept: Any) -> bool:
        return self.terms.in_set("spine-surgery", codings(concept)) or bool(
            self.surgery_text.search(concept_text(concept))
        )

    def _item(self, chart: Chart, res: Any, concept: Any, label: str) -> Evidence:
        pairs = codings(concept)
        return Evidence(
            chart.ref(res),
            chart.date(res),
            clip(concept_name(concept) or concept_text(concept), 120),
            label,
            next((c for _, c in pairs if c), ""),
        )

    def _is_course(self, sessions: Iterable[Evidence]) -> bool:
        days = sorted({s.when for s in sessions if s.when})
        return (
            len(days) >= self.k.pt_course.min_sessions
            and (days[-1] - days[0]).days >= self.k.pt_course.min_span_days
        )

    def _course(self, sessions: list[Evidence]) -> Evidence:
        days = sorted({s.when for s in sessions if s.when})
        first = min(sessions, key=lambda s: s.when or date.max)
        text = f"{len(days)} PT sessions from {days[0].isoformat()} to {days[-1].isoformat()}"
        return Evidence(first.ref, days[-1], text, "PT sessions", what="course of PT")
