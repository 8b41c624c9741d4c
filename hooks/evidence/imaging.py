"""Lumbar spine and plexus MRI: reports wherever they are filed, what they show, and pending orders.

One chart, one answer: `qualifying(onset)` is the single definition of "an MRI that counts" for the
patient-view MRI card and for order-select's "MRI before surgery", so an MRI too old for one is too old
for the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hooks.common.fhir import attachment_text, codings, concept_text
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex
from hooks.evidence.chart import Chart
from hooks.evidence.model import Evidence, MriStudy, clip
from hooks.evidence.narrative import NarrativeReader
from hooks.nlp import FINDING_EXCLUDE, EmgTextAnalyzer


class ImagingKnowledge(KnowledgeFile):
    mri_text: Regex
    plexus_text: Regex
    report_heading: Regex
    report_statuses: list[str]
    document_statuses: list[str]
    exam_date_text: Regex
    compressive_lesion: Regex
    root_contact: Regex
    level_lookback_chars: int
    disc_lesion: Regex
    level_lumbar: Regex
    level_lumbosacral: Regex
    pending_order_statuses: list[str]


@dataclass
class ImagingEvidence:
    mri: list[MriStudy]  # newest first
    pending: list[Evidence]  # active or draft MRI orders (chart and this call's draft orders)

    def qualifying(self, since: date) -> list[MriStudy]:
        """Lumbar spine MRIs dated on or after `since` (max of episode onset and the imaging lookback)."""
        return [m for m in self.mri if m.evidence.when and m.evidence.when >= since and not m.plexus]


class ImagingReader:
    def __init__(
        self,
        knowledge: ImagingKnowledge,
        terms: Terminology,
        analyzer: EmgTextAnalyzer,
        reader: NarrativeReader,
    ) -> None:
        self.k = knowledge
        self.terms = terms
        self.analyzer = analyzer
        self.reader = reader
        self.mri_text = re.compile(knowledge.mri_text, re.I)
        self.plexus_text = re.compile(knowledge.plexus_text, re.I)
        self.heading = re.compile(knowledge.report_heading, re.I)
        self.exam_date = re.compile(knowledge.exam_date_text, re.I)
        self.disc = re.compile(knowledge.disc_lesion, re.I)
        self.lumbar_level = re.compile(knowledge.level_lumbar, re.I)
        self.lumbosacral_level = re.compile(knowledge.level_lumbosacral, re.I)

    def read(self, chart: Chart, draft_orders: list[Any]) -> ImagingEvidence:
        studies: list[MriStudy] = []
        for rep in chart.latest_reports():
            if rep.status not in self.k.report_statuses:
                continue
            pairs = codings(rep.code)
            lumbar = self.terms.in_set("lumbar-mri", pairs)
            plexus = self.terms.in_set("plexus-mri", pairs)
            name = concept_text(rep.code)
            if not (lumbar or plexus or self.mri_text.search(name)):
                continue
            texts = [rep.conclusion] if rep.conclusion else []
            texts += [
                self.analyzer.prepare(*d) for a in rep.presentedForm or [] if (d := attachment_text(a, 20000))
            ]
            is_plexus = plexus or (not lumbar and bool(self.plexus_text.search(name)))
            texts = [chart.take(t) for t in texts]  # read only now that it is an MRI report
            studies.append(self._study(chart.ref(rep), chart.date(rep), texts, is_plexus))
        for doc in chart.documents():
            if doc.docStatus is not None and doc.docStatus not in self.k.document_statuses:
                continue
            title = " ".join([concept_text(doc.type), doc.description or ""])
            decoded = [
                self.analyzer.prepare(*d)
                for c in doc.content or []
                if (d := attachment_text(c.attachment, 20000))
            ]
            if not decoded and doc.description:
                decoded = [doc.description]  # an outside scan indexed with its impression in the description
            head = decoded[0][:600] if decoded else ""
            typed = self.terms.in_set("lumbar-mri", codings(doc.type)) or self.terms.in_set(
                "spine-mri-document", codings(doc.type)
            )
            if not (
                self.mri_text.search(title)
                or self.heading.search(head)
                or (typed and self.mri_text.search(head))
            ):
                continue
            when = self._exam_date(head) or chart.date(doc)
            decoded = [chart.take(t) for t in decoded]
            studies.append(self._study(chart.ref(doc), when, decoded, bool(self.plexus_text.search(title))))
        studies.sort(key=lambda m: m.evidence.when or date.min, reverse=True)
        pending = []
        for sr in [*chart.orders(self.k.pending_order_statuses), *draft_orders]:
            if sr.get_resource_type() != "ServiceRequest":
                continue
            pairs = codings(sr.code)
            if self.terms.in_set("lumbar-mri", pairs) or self.terms.in_set("plexus-mri", pairs):
                pending.append(Evidence(chart.ref(sr), chart.date(sr), concept_text(sr.code), "MRI order"))
        return ImagingEvidence(studies, pending)

    def _study(self, ref: str, when: date | None, texts: list[str], plexus: bool) -> MriStudy:
        text = "\n".join(t for t in texts if t)
        impression = self.analyzer.impression(text) or text
        hits = (
            self.reader.affirmed(impression, self.k.compressive_lesion, FINDING_EXCLUDE) if impression else ()
        )
        if not hits and impression != text:
            hits = self.reader.affirmed(text, self.k.root_contact, FINDING_EXCLUDE)
        disc_levels = set()
        for sentence in hits:
            if self.disc.search(sentence):
                levelled = sentence
                if not (self.lumbosacral_level.search(sentence) or self.lumbar_level.search(sentence)):
                    levelled = self._level_heading(text, sentence)
                if self.lumbosacral_level.search(levelled):
                    disc_levels.add("lumbosacral")
                if self.lumbar_level.search(levelled):
                    disc_levels.add("lumbar")
                if not disc_levels:
                    disc_levels.add("unspecified")
        label = "Plexus MRI" if plexus else "Lumbar spine MRI"
        quote = hits[0] if hits else clip(impression, 300)
        return MriStudy(
            Evidence(ref, when, clip(quote, 300), label),
            compressive=bool(hits),
            plexus=plexus,
            disc_levels=tuple(sorted(disc_levels)),
        )

    def _level_heading(self, text: str, sentence: str) -> str:
        """The nearest level written before a sentence that names none ("L4-L5: ... The protrusion ...")."""
        at = text.find(sentence[:60])
        if at < 0:
            return ""
        before = text[max(0, at - self.k.level_lookback_chars) : at]
        levels = [m for p in (self.lumbar_level, self.lumbosacral_level) for m in p.finditer(before)]
        return max(levels, key=lambda m: m.start()).group(0) if levels else ""

    def _exam_date(self, head: str) -> date | None:
        m = self.exam_date.search(head)
        if not m:
            return None
        raw = m.group("date")
        for fmt in ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d"):
            try:
                return datetime.strptime(raw, fmt).date()
            except ValueError:
                continue
        return None
