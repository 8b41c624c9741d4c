"""The EMG impression reader: does this report prove an L5 radiculopathy with axon loss?

The pipeline (each step in its own module; the overview is in :mod:`hooks.nlp`):

1. prepare and scope the report (:mod:`hooks.nlp.emg_sections`);
2. annotate it with the ConText engine (:mod:`hooks.nlp.context`);
3. find radiculopathy and other-diagnosis mentions with their roots (:mod:`hooks.nlp.emg_mentions`,
   :mod:`hooks.nlp.emg_roots`);
4. attribute axon-loss markers and read chronicity (:mod:`hooks.nlp.emg_axon_loss`) and laterality
   (:mod:`hooks.nlp.emg_laterality`);
5. combine everything into one frozen :class:`EmgTextFinding` (this module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hooks.nlp.assertion import Span
from hooks.nlp.budget import TextBudget
from hooks.nlp.context import ContextEngine, load_knowledge
from hooks.nlp.emg_axon_loss import AxonLossReader
from hooks.nlp.emg_laterality import LateralityReader
from hooks.nlp.emg_mentions import OTHER_DX, MentionFinder
from hooks.nlp.emg_roots import RootParser
from hooks.nlp.emg_sections import SectionReader, prepare_report

_CONFIDENCE = ("high", "medium", "low")
_MAX_EVIDENCE = 300


@dataclass(frozen=True)
class EmgTextFinding:
    """What one EMG report/impression says about L5 radiculopathy (evidence shown on cards)."""

    l5_radiculopathy: bool  # positive, current, not negated, not uncertain
    axon_loss: bool  # axon-loss markers present (not negated) and not owned by another diagnosis
    positive: bool  # l5_radiculopathy and axon_loss (Rule A trigger)
    laterality: str | None  # "left" | "right" | "bilateral" | None
    chronicity: str | None  # "acute" | "chronic" | "chronic-active" | None
    confidence: str  # "high" | "medium" | "low"
    multi_level: bool  # L4-5 / L5-S1 / "L5 and S1" notation
    other_roots: tuple[str, ...]  # roots mentioned positively other than L5, e.g. ("S1",)
    mimic: str | None  # e.g. "fibular neuropathy" when a mimic is an affirmed finding
    uncertain: bool
    negated: bool
    matched_text: str  # the sentence(s) that fired, <= 300 chars
    section: str | None  # header(s) the text came from, e.g. "IMPRESSION"; None if whole text / is_impression
    truncated: bool


class EmgTextAnalyzer:
    """Compiled EMG text knowledge + ConText engine. Build once with :meth:`load`; call :meth:`analyze`."""

    def __init__(self, knowledge: Mapping[str, Any], engine: ContextEngine):
        self.knowledge_version = str(knowledge["version"])
        self.engine = engine
        limits = knowledge.get("limits") or {}
        self.max_chars = int(limits.get("max_chars", 20000))
        self.max_html_chars = int(limits.get("max_html_chars", 5 * self.max_chars))
        self.max_chars_per_call = int(limits.get("max_chars_per_call", 10 * self.max_chars))
        self._roots = RootParser(knowledge["roots"])
        self._mentions = MentionFinder(knowledge, self._roots)
        self._sections = SectionReader(knowledge["sections"], self._mentions.term)
        self._axon = AxonLossReader(knowledge["axon_loss"], knowledge["muscles"])
        self._laterality = LateralityReader(knowledge["laterality"])

    @classmethod
    def load(cls, knowledge_path: Path | None = None) -> EmgTextAnalyzer:
        """Read the knowledge file and compile everything (call once at start-up; the result is reusable)."""
        knowledge = load_knowledge(knowledge_path)
        return cls(knowledge, ContextEngine(knowledge))

    def budget(self) -> TextBudget:
        """A fresh per-call text budget (``limits.max_chars_per_call``); see :mod:`hooks.nlp.budget`."""
        return TextBudget(self.max_chars_per_call)

    def _prepare(self, text: str, content_type: str) -> tuple[str, bool]:
        return prepare_report(
            text, content_type, max_chars=self.max_chars, max_html_chars=self.max_html_chars
        )

    def prepare(self, text: str, content_type: str = "text/plain") -> str:
        """The normalised visible text the reader works on (HTML stripped first, then capped)."""
        return self._prepare(text, content_type)[0]

    def impression(self, text: str, content_type: str = "text/plain") -> str | None:
        """The impression/conclusion text of a report (HTML handled), or None when no such header exists."""
        body, _ = self._prepare(text, content_type)
        scoped, section, _ = self._sections.scope(body)
        return scoped if section else None

    @staticmethod
    def _evidence(text: str, spans: list[Span]) -> str:
        parts = [text[a:b].strip() for a, b in sorted(dict.fromkeys(spans))]
        joined = re.sub(r"\s+", " ", " ".join(p for p in parts if p))
        return joined if len(joined) <= _MAX_EVIDENCE else joined[: _MAX_EVIDENCE - 1].rstrip() + "\u2026"

    # ------------------------------------------------------------------------------------------ analyse
    def analyze(
        self, text: str, content_type: str = "text/plain", *, is_impression: bool = False
    ) -> EmgTextFinding:
        """Classify one report. ``is_impression=True``: ``text`` is already a conclusion; read it whole."""
        body, truncated = self._prepare(text, content_type)
        if is_impression:
            scoped, section, dropped = body, None, False
        else:
            scoped, section, dropped = self._sections.scope(body)
        return self._analyze_impression(scoped, section, dropped, truncated)

    def _analyze_impression(
        self, text: str, section: str | None, dropped: bool, truncated: bool
    ) -> EmgTextFinding:
        target = self._roots.target
        ann = self.engine.annotate(text)
        radics = self._mentions.radiculopathies(text, ann)
        dx = self._mentions.diagnoses(text, ann)
        alternatives = self._mentions.alternatives(text, radics + dx)
        radics = [
            replace(
                r,
                assertion=replace(
                    r.assertion, uncertain=True, triggers=(*r.assertion.triggers, "uncertain:or")
                ),
            )
            if target in r.roots and alternatives.offered(r)
            else r
            for r in radics
        ]
        l5_all = [r for r in radics if target in r.roots]
        l5_current = [r for r in l5_all if r.current]
        unspecified = [r for r in radics if not r.roots]
        other_root = [r for r in radics if r.roots and target not in r.roots]
        # Another root's radiculopathy ("right S1 radiculopathy with denervation") owns its clause's markers.
        owners = [d for d in dx if d.current] + [
            replace(r, name="/".join(r.roots) + " radiculopathy") for r in other_root if r.current
        ]
        matches = self._axon.matches(text)
        marker_mask = bytearray(len(text))
        for start, end, _ in matches:
            marker_mask[start:end] = b"\x01" * (end - start)
        markers = self._axon.attribute(text, ann, matches, l5_current, owners)
        usable = [m for m in markers if m.current and m.owner in ("L5", "free")]
        axon_loss = bool(usable)
        l5 = bool(l5_current)

        other_roots = tuple(
            root
            for root in self._roots.order
            if root != target and any(root in r.roots for r in radics if r.current)
        )
        mimic = next((d.name for d in dx if d.current and d.name != OTHER_DX), None)

        laterality = chronicity = None
        multi = False
        evidence: list[Span] = []
        if l5_current:
            concept = l5_current[0]
            multi = any(r.multi for r in l5_current)
            side_index = self._laterality.index(text, ann, owners)
            sides = {side_index.of(r) for r in l5_current} - {None}
            laterality = "bilateral" if len(sides) > 1 else next(iter(sides), None)
            spans = [r.clause for r in l5_current] + [m.clause for m in usable]
            chronicity = self._axon.chronicity(ann, spans, usable, marker_mask) if axon_loss else None
            evidence = [concept.sentence] + [m.sentence for m in usable]
        elif l5_all:
            evidence = [r.sentence for r in l5_all]
        elif unspecified:
            evidence = [r.sentence for r in unspecified]
        elif mimic:
            evidence = [next(d.sentence for d in dx if d.current and d.name == mimic)]

        scoped_flags = l5_all + unspecified
        uncertain = not l5 and any(r.assertion.uncertain for r in scoped_flags)
        negated = not l5 and any(r.assertion.negated for r in scoped_flags)

        level = 1 if dropped else 0
        if multi:
            level = 2
        return EmgTextFinding(
            l5_radiculopathy=l5,
            axon_loss=axon_loss,
            positive=l5 and axon_loss,
            laterality=laterality,
            chronicity=chronicity,
            confidence=_CONFIDENCE[min(level, 2)],
            multi_level=multi,
            other_roots=other_roots,
            mimic=mimic,
            uncertain=uncertain,
            negated=negated,
            matched_text=self._evidence(text, evidence),
            section=section,
            truncated=truncated,
        )

    # ------------------------------------------------------------------------------------------ helpers
    def is_negated_mention(self, text: str, pattern: str) -> bool | None:
        """Reuse of the ConText engine: None if ``pattern`` is absent, True if every match is negated."""
        return self.engine.is_negated_mention(text, pattern)
