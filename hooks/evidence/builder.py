"""The evidence layer's entry point: one pass over the chart, one extractor per clinical concept.

Flow: the chart's resources -> narratives (notes, flowsheets, questionnaires) -> each concept's extractor
(EDX reports, imaging, diagnoses, care history, red flags, motor exam, episode) -> `PatientEvidence`.
Every concept's wording and codes are in its own knowledge file, loaded and checked once at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hooks.common.fhir import codings, concept_text
from hooks.common.knowledge import Terminology
from hooks.common.schema import load_model, locate
from hooks.evidence.care_history import CareHistoryReader, CareKnowledge
from hooks.evidence.chart import Chart
from hooks.evidence.diagnoses import DiagnosisKnowledge, DiagnosisReader
from hooks.evidence.edx_reports import EdxKnowledge, EdxReportReader
from hooks.evidence.episode import EpisodeKnowledge, EpisodeReader, Span
from hooks.evidence.imaging import ImagingKnowledge, ImagingReader
from hooks.evidence.model import PatientEvidence, Windows
from hooks.evidence.motor_exam import MotorExamReader, MotorKnowledge
from hooks.evidence.narrative import Narrative, NarrativeKnowledge, NarrativeReader
from hooks.evidence.red_flags import RedFlagKnowledge, RedFlagReader
from hooks.nlp import ContextEngine, EmgTextAnalyzer, load_knowledge

log = logging.getLogger(__name__)

#: Every knowledge file of the evidence layer, by path relative to the `hooks` package.
FILES = {
    "windows": ("knowledge/windows.yaml", Windows),
    "narrative": ("knowledge/narrative.yaml", NarrativeKnowledge),
    "red_flags": ("knowledge/red_flags.yaml", RedFlagKnowledge),
    "motor_exam": ("knowledge/motor_exam.yaml", MotorKnowledge),
    "edx_reports": ("knowledge/edx_reports.yaml", EdxKnowledge),
    "imaging": ("knowledge/imaging.yaml", ImagingKnowledge),
    "care_history": ("knowledge/care_history.yaml", CareKnowledge),
    "diagnoses": ("knowledge/diagnoses.yaml", DiagnosisKnowledge),
    "episode": ("knowledge/episode.yaml", EpisodeKnowledge),
}


@dataclass(frozen=True)
class ChartInput:
    """What the builder needs from a hook call (a `cds.registry.HookInput` satisfies it)."""

    resources: dict[str, list[Any]]
    now: datetime
    draft_orders: list[Any]


class EvidenceBuilder:
    """Holds the compiled knowledge of every concept; `build` is called once per hook call."""

    def __init__(self, terms: Terminology, site_dir: Path | None = None) -> None:
        self.terms = terms
        loaded = {name: load_model(model, path, site_dir) for name, (path, model) in FILES.items()}
        self.versions = {path: loaded[name].version for name, (path, _) in FILES.items()}
        emg_text = load_knowledge(locate("knowledge/emg_text.yaml", site_dir))
        self.versions["knowledge/emg_text.yaml"] = str(emg_text["version"])
        self.analyzer = EmgTextAnalyzer(emg_text, ContextEngine(emg_text))
        self.windows = loaded["windows"].days
        self.reader = NarrativeReader(loaded["narrative"], emg_text, terms)
        max_chars = loaded["narrative"].max_chars
        self.edx = EdxReportReader(loaded["edx_reports"], terms, self.analyzer, max_chars)
        self.imaging = ImagingReader(loaded["imaging"], terms, self.analyzer, self.reader)
        self.diagnoses = DiagnosisReader(loaded["diagnoses"], terms, self.reader)
        self.care = CareHistoryReader(loaded["care_history"], terms, self.reader)
        self.red_flags = RedFlagReader(loaded["red_flags"], terms, self.reader)
        self.motor = MotorExamReader(loaded["motor_exam"], terms, self.reader)
        self.episodes = EpisodeReader(loaded["episode"])

    def chart(self, inp: Any) -> Chart:
        zone = inp.now.tzinfo
        resolver = getattr(inp, "resolve", None)
        return Chart(dict(inp.resources), inp.now.date(), zone, resolver, self.analyzer.budget())

    def build(self, inp: Any) -> PatientEvidence:
        chart = self.chart(inp)
        today, w = chart.today, self.windows
        edx = self.edx.read(chart)
        imaging = self.imaging.read(chart, list(inp.draft_orders))
        report_refs = {s.evidence.ref for s in edx.studies} | {m.evidence.ref for m in imaging.mri}
        narratives = self.narratives(chart, report_refs)
        diagnoses = self.diagnoses.read(chart, narratives)
        care = self.care.read(chart, narratives)
        conditions = chart.conditions()
        red_flags = self.red_flags.read(conditions, narratives, today, w.red_flag, chart.zone)
        motor = self.motor.read(conditions, narratives, today, w.new_deficit, chart.zone)
        episode_items = [Span(e) for e in diagnoses.symptom_conditions] + self.episodes.stated_onsets(
            narratives
        )
        episode_items += [
            Span(e) for e in diagnoses.radicular_symptoms if e.ref.startswith("DocumentReference")
        ]
        positive = edx.positive(today, w.emg_lookback)
        if positive is not None:
            episode_items = self.episodes.same_side(episode_items, positive.finding.laterality)
            episode_items.append(Span(positive.evidence))
        return PatientEvidence(
            today,
            w,
            edx,
            imaging,
            diagnoses,
            care,
            motor,
            red_flags,
            self.episodes.episode(
                episode_items,
                today,
                continued=self.episodes.continued(
                    narratives, today - timedelta(days=w.new_deficit), self.reader.mentions
                )
                is not None,
            ),
            ordered=self._ordered(chart, inp.draft_orders),
            incomplete=tuple(getattr(inp, "incomplete", ()) or ()),
            unread=self._unread(chart),
        )

    @staticmethod
    def _unread(chart: Chart) -> bool:
        """Did the reading limit stop this call reading every text? (logged: an operator may raise it)"""
        budget = chart.budget
        if budget is None or not budget.exhausted:
            return False
        log.warning("evidence.text_budget_exhausted", extra={"limit": budget.limit, "cut": budget.cut})
        return True

    def narratives(self, chart: Chart, exclude: set[str]) -> list[Narrative]:
        """Notes, flowsheet and exam rows, questionnaires: the text every concept reads."""
        out: list[Narrative] = []
        for doc in chart.documents():
            if chart.ref(doc) in exclude:
                continue
            n = self.reader.document(doc, chart.zone, chart.take)
            if n is not None:
                out += [n, *n.copied]
        for obs in chart.observations():
            if self.edx.edx_text.search(concept_text(obs.code)):
                continue  # an EMG/NCS result row ("L tibialis anterior: fibs 2+") is not a strength exam
            n = self.reader.observation(obs, chart.zone)
            if n is not None:
                out.append(n)
        for qr in chart.questionnaires():
            n = self.reader.questionnaire(qr, chart.zone)
            if n is not None:
                out.append(n)
        for enc in chart.encounters():
            reasons = "; ".join(concept_text(r) for r in enc.reasonCode or [] if concept_text(r))
            if reasons:
                when = chart.date(enc)
                out.append(self.reader.from_text(chart.ref(enc), when, "Visit reason", reasons))
        return out

    def _ordered(self, chart: Chart, drafts: list[Any]) -> set[tuple[str, str]]:
        """Codes of orders already placed or being placed: a card never suggests them again."""
        out: set[tuple[str, str]] = set()
        for sr in [*chart.orders(("draft", "active", "on-hold")), *drafts]:
            for system, code in codings(getattr(sr, "code", None)):
                key = self.terms.key(system, code)
                if key:
                    out.add(key)
        return out
