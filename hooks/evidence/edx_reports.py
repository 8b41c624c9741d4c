"""EMG/NCS studies: which documents are reports of a relevant study, which version counts, what they say.

Rule A fires on the *newest relevant* study, so picking it is half the job:
- relevant means a lower-limb or lumbosacral electrodiagnostic study of this patient. A later carpal-tunnel
  study, a polysomnogram with leg EMG channels or an EEG is not one, and a consult note that cites "EMG
  showed L5 radiculopathy" is not a report at all (its red flags and exam still count elsewhere);
- a preliminary or unsigned report never drives cards; an amended report whose addendum retracts or
  revises the diagnosis is read as revised; entered-in-error versions never count;
- the impression may sit in `conclusion`, in the presented report (inline, or fetched by the engine), in
  `DiagnosticReport.result` Observations (contained or not), or in a stand-alone impression Observation.
Completed EDX procedures and orders prove a study was done (the payer's "needle EMG within 12 months")
without saying anything about its findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from hooks.common.fhir import attachment_text, codings, concept_name, concept_text, narrative_values
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.chart import Chart
from hooks.evidence.model import EdxStudy, EmgFinding, Evidence
from hooks.nlp import EmgTextAnalyzer, EmgTextFinding

Limb = Literal["lower", "upper", "both", "unknown"]


class LimbText(Strict):
    lower_title: Regex
    upper_title: Regex
    lower_text: Regex
    upper_text: Regex


class EdxKnowledge(KnowledgeFile):
    report_statuses: list[str]
    accept_preliminary_reports: bool
    document_statuses: list[str]
    unsigned_text: Regex
    edx_text: Regex
    not_edx_text: Regex
    report_structure: Regex
    report_structure_min: int
    report_heading: Regex
    limb: LimbText
    addendum_header: Regex
    addendum_revises: Regex
    addendum_original: Regex
    addendum_revised: Regex
    impression_observation: Regex


@dataclass(frozen=True)
class Reading:
    """One candidate report: when, where, which limb, and what its impression says (None = no text)."""

    ref: str
    when: date | None
    label: str
    limb: Limb
    finding: EmgTextFinding | None
    coded: bool
    rank: int  # same-day tie-break: a coded DiagnosticReport beats a note


@dataclass
class EdxEvidence:
    readings: list[EmgFinding]  # readable relevant reports, newest first
    studies: list[EdxStudy]  # every proof a study was done (reports, procedures, completed orders)
    unreadable: list[Evidence]  # the newest relevant report, when its file holds no readable text

    def positive(self, today: date, lookback: int) -> EmgFinding | None:
        """The newest relevant study within `lookback` days decides (no cherry-picking an older one)."""
        recent = [
            f for f in self.readings if f.evidence.when and 0 <= (today - f.evidence.when).days <= lookback
        ]
        return recent[0] if recent and recent[0].finding.positive else None


def _limb_of(title: str, text: str, k: LimbText) -> Limb:
    lower_t, upper_t = re.search(k.lower_title, title, re.I), re.search(k.upper_title, title, re.I)
    if lower_t or upper_t:
        return "both" if lower_t and upper_t else "lower" if lower_t else "upper"
    lower, upper = re.search(k.lower_text, text, re.I), re.search(k.upper_text, text, re.I)
    return "both" if lower and upper else "lower" if lower else "upper" if upper else "unknown"


class EdxReportReader:
    def __init__(
        self, knowledge: EdxKnowledge, terms: Terminology, analyzer: EmgTextAnalyzer, max_chars: int
    ):
        self.k = knowledge
        self.terms = terms
        self.analyzer = analyzer
        self.max_chars = max_chars
        self.edx_text = re.compile(knowledge.edx_text, re.I)
        self.not_edx = re.compile(knowledge.not_edx_text, re.I)
        self.unsigned = re.compile(knowledge.unsigned_text, re.I)
        self.structure = re.compile(knowledge.report_structure, re.I)
        self.heading = re.compile(knowledge.report_heading, re.I | re.M)
        self.addendum = re.compile(knowledge.addendum_header, re.I)
        self.revises = re.compile(knowledge.addendum_revises, re.I)
        self.original = re.compile(knowledge.addendum_original, re.I)
        self.revised = re.compile(knowledge.addendum_revised, re.I)
        self.impression_obs = re.compile(knowledge.impression_observation, re.I)
        statuses = set(knowledge.report_statuses)
        self.statuses = statuses | ({"preliminary"} if knowledge.accept_preliminary_reports else set())
        self.doc_statuses = set(knowledge.document_statuses) | (
            {"preliminary"} if knowledge.accept_preliminary_reports else set()
        )
        # Reports come back with every hook call for the same patient: reading is a pure function of the
        # text and the knowledge, so it is memoized (bounded, thread-safe).
        self._analyze: Callable[..., EmgTextFinding] = lru_cache(maxsize=4096)(analyzer.analyze)

    # -- what is an EDX study ------------------------------------------------------------------------------

    def is_edx(self, concept: Any, categories: Any = None) -> tuple[bool, bool]:
        """(is an EDX study, selected by code). Codes first, then text; sleep/EEG studies never are."""
        pairs = codings(concept)
        text = concept_text(concept)
        if self.terms.in_set("other-neurophysiology", pairs) or self.not_edx.search(text):
            return False, False
        if self.terms.in_set("edx-report", pairs) or self.terms.in_set("edx-procedure", pairs):
            return True, True
        if categories is not None and self.terms.in_set("edx-category", codings(categories)):
            return True, True
        return bool(self.edx_text.search(text)), False

    def limb(self, title: str, text: str = "") -> Limb:
        return _limb_of(title, text, self.k.limb)

    def is_relevant(self, limb: Limb) -> bool:
        return limb != "upper"

    # -- reading ------------------------------------------------------------------------------------------

    def read(self, chart: Chart) -> EdxEvidence:
        readings: list[Reading] = []
        unreadable: list[Evidence] = []
        studies: list[EdxStudy] = []
        result_refs: set[str] = set()
        for rep in chart.latest_reports():
            is_edx, coded = self.is_edx(rep.code, rep.category)
            if not is_edx:
                continue
            when = chart.date(rep)
            results = [
                o for r in rep.result or [] if (o := chart.resolve(r.reference or "", rep)) is not None
            ]
            result_refs |= {r.reference for r in rep.result or [] if r.reference}
            texts = self._report_texts(rep, results)
            full = "\n".join(t for t, _ in texts)
            title = concept_text(rep.code)
            limb = self.limb(title, full)
            label = "EMG/NCS report"
            studies.append(EdxStudy(Evidence(chart.ref(rep), when, "", label, what=title), True, limb))
            if rep.status not in self.statuses or self.unsigned.search(full[:3000]):
                continue
            if not self.is_relevant(limb):
                continue
            finding = self._finding(rep.conclusion, rep.conclusionCode, texts, chart.take)
            if finding is None:
                self._unreadable(chart.unreadable(rep.presentedForm), chart.ref(rep), when, label, unreadable)
            readings.append(Reading(chart.ref(rep), when, label, limb, finding, coded, 0))
        for doc in chart.documents():
            title = " ".join([concept_text(doc.type), doc.description or ""])
            decoded = [d for c in doc.content or [] if (d := attachment_text(c.attachment, self.max_chars))]
            first = " ".join(self.analyzer_text(t, ct)[:4000] for t, ct in decoded[:1])
            is_edx, coded = self.is_edx(doc.type)
            if self.not_edx.search(title):
                continue
            structured = len(
                {m.group(0).lower() for m in self.structure.finditer(first)}
            ) >= self.k.report_structure_min or bool(self.heading.search(first[:300]))
            if not (is_edx or structured or (self.edx_text.search(title) and not decoded)):
                continue
            when = chart.date(doc)
            full = " ".join(self.analyzer_text(t, ct) for t, ct in decoded)
            limb = self.limb(title, full)
            label = "EMG/NCS report"
            studies.append(EdxStudy(Evidence(chart.ref(doc), when, "", label, what=title), True, limb))
            if not self._document_valid(doc) or self.unsigned.search(full[:3000]):
                continue
            if not self.is_relevant(limb):
                continue
            finding = self._finding(None, None, decoded, chart.take)
            if finding is None:
                why = chart.unreadable([c.attachment for c in doc.content or []])
                self._unreadable(why, chart.ref(doc), when, label, unreadable)
            readings.append(Reading(chart.ref(doc), when, label, limb, finding, coded, 1))
        for obs in chart.observations():
            ref = chart.ref(obs)
            if ref in result_refs or not self.impression_obs.search(concept_text(obs.code)):
                continue
            if obs.status not in ("final", "amended", "corrected"):
                continue
            text = ". ".join(narrative_values(obs))
            if not text or self.unsigned.search(text):
                continue
            finding = self._analyze(chart.take(text[: self.max_chars]), is_impression=True)
            limb = self.limb(concept_text(obs.code), text)
            if self.is_relevant(limb):
                readings.append(Reading(ref, chart.date(obs), "EMG/NCS impression", limb, finding, False, 2))
        for res in [*chart.completed_procedures(), *chart.completed_orders()]:
            is_edx, _ = self.is_edx(res.code)
            if not is_edx:
                continue
            pairs = codings(res.code)
            name = concept_name(res.code)
            limb = self.limb(" ".join([name, concept_text(getattr(res, "bodySite", None) or [])]))
            needle = self.terms.in_set("needle-emg", pairs) or not self.terms.in_set("ncs", pairs)
            label = (
                "EMG/NCS procedure" if res.get_resource_type() == "Procedure" else "EMG/NCS order (completed)"
            )
            studies.append(
                EdxStudy(Evidence(chart.ref(res), chart.date(res), "", label, what=name), needle, limb)
            )
        ordered = _decisive_first(sorted(readings, key=lambda r: (r.when or date.min, -r.rank), reverse=True))
        findings = [
            EmgFinding(Evidence(r.ref, r.when, r.finding.matched_text or "", r.label), r.finding, r.coded)
            for r in ordered
            if r.finding is not None
        ]
        studies.sort(key=lambda s: s.evidence.when or date.min, reverse=True)
        newest = ordered[0] if ordered else None
        if newest is not None and newest.finding is None:
            # The newest relevant study cannot be read: an older reading must not stand in for it.
            findings = []
        blocked = newest is not None and newest.finding is None
        return EdxEvidence(findings, studies, [u for u in unreadable if blocked and u.ref == newest.ref])

    @staticmethod
    def _unreadable(
        why: tuple[str, bool] | None, ref: str, when: date | None, label: str, out: list[Evidence]
    ) -> None:
        """A report whose file holds no readable text (a scan, an encrypted PDF) is worth a clinician's
        look; one that was never fetched (timeout, not found) is not: nothing is known about it."""
        if why is not None and not why[1]:
            out.append(Evidence(ref, when, "", label, what=why[0]))

    def analyzer_text(self, text: str, content_type: str) -> str:
        """Visible, normalised text (markup stripped before the cap, as the EMG reader sees it)."""
        return self.analyzer.prepare(text, content_type)

    def _document_valid(self, doc: Any) -> bool:
        if doc.status not in (None, "current"):
            return False
        return doc.docStatus is None or doc.docStatus in self.doc_statuses

    def _report_texts(self, rep: Any, results: list[Any]) -> list[tuple[str, str]]:
        texts = [d for a in rep.presentedForm or [] if (d := attachment_text(a, self.max_chars))]
        for obs in results:
            value = ". ".join(narrative_values(obs))
            if value:
                texts.append((value, "text/plain"))
        return texts

    def _finding(
        self,
        conclusion: str | None,
        codes: Any,
        texts: list[tuple[str, str]],
        take: Callable[[str], str],
    ) -> EmgTextFinding | None:
        """The conclusion first; an addendum that speaks about the diagnosis overrides everything.
        Every text is charged to the call's budget (`take`, after markup is stripped) before it is read."""
        stated = " ".join(p for p in [conclusion or "", concept_text(codes or [])] if p).strip()
        bodies = [self.analyzer_text(text, ct) for text, ct in texts]
        for body in [stated, *bodies]:
            revised = self._addendum(body)
            if revised is not None:
                return self._analyze(take(revised[: self.max_chars]), is_impression=True)
        readings: list[EmgTextFinding] = []
        if stated:
            readings.append(self._analyze(take(stated[: self.max_chars]), is_impression=True))
        for (text, content_type), body in zip(texts, bodies, strict=True):
            allowed = take(body)
            # Within budget: read the report as it came (its cut-off flag intact); past it, what is left.
            readings.append(
                self._analyze(text, content_type) if allowed == body else self._analyze(allowed, "text/plain")
            )
        return _decide(readings)

    def _addendum(self, body: str) -> str | None:
        """The addendum's own words about the diagnosis: its revised impression when it has one, never the
        original impression it quotes or retracts."""
        marks = list(self.addendum.finditer(body))
        if not marks:
            return None
        tail = body[marks[-1].end() :]
        original = self.original.search(tail)
        if original:
            tail = tail[: original.start()]
        revised = self.revised.search(tail)
        if revised:
            tail = tail[revised.end() :]
        return tail if self.revises.search(tail) else None


def _decisive_first(readings: list[Reading]) -> list[Reading]:
    """Several readings of the same day are parts of one study (an NCS row and the EMG impression): the one
    that decides about L5 goes first, and a doubt or a negation outranks a positive reading."""
    if not readings:
        return readings
    day = readings[0].when
    same = [r for r in readings if r.when == day]
    rest = [r for r in readings if r.when != day]

    def weight(r: Reading) -> int:
        f = r.finding
        if f is None:
            return 3
        if not f.positive and (f.negated or f.uncertain):
            return 0
        return 1 if f.positive else 2

    return sorted(same, key=weight) + rest


def _decide(readings: list[EmgTextFinding]) -> EmgTextFinding | None:
    """A negative or uncertain reading of the conclusion is not overruled by another part of the report."""
    if not readings:
        return None
    first = readings[0]
    if first.positive or first.negated or first.uncertain or first.l5_radiculopathy or first.other_roots:
        return first
    for reading in readings[1:]:
        if reading.positive or reading.negated or reading.uncertain or reading.l5_radiculopathy:
            return reading
    return first
