"""Axon-loss markers in an EMG impression: who owns each one, and the time course they imply.

Why attribution matters: mimics have axon loss too ("fibular neuropathy with axon loss"), so a clause that
names another current diagnosis owns its markers and can never make an L5 radiculopathy positive. Markers in
a diagnosis-free clause count unless every muscle the clause names lies outside the L5 myotome. Wording
lives in the ``axon_loss`` and ``muscles`` blocks of ``knowledge/emg_text.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hooks.nlp.assertion import AnnotatedText, Span
from hooks.nlp.emg_mentions import NOT_CURRENT, DxMention
from hooks.nlp.textprep import icase


@dataclass(frozen=True)
class Marker:
    start: int
    end: int
    chronicity: str
    current: bool
    clause: Span
    sentence: Span
    owner: str  # "L5" | "free" | a diagnosis name | "other-muscles"


class AxonLossReader:
    """Compiled marker, chronicity-word and myotome patterns."""

    def __init__(self, axon: Mapping[str, Any], muscles: Mapping[str, Any]):
        self._marker_rules = [(m["chronicity"], icase(m["pattern"])) for m in axon["markers"]]
        words = axon["chronicity_words"]
        self._acute_word = icase(words["acute"])
        self._chronic_word = icase(words["chronic"])
        self._l5_muscle = icase(muscles["l5_myotome"])
        self._other_muscle = icase(muscles["other"])

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """All axon-loss markers; overlaps go to the longest ("chronic denervation" > "denervation")."""
        raw: list[tuple[int, int, str]] = []
        for chron, rx in self._marker_rules:
            raw.extend((m.start(), m.end(), chron) for m in rx.finditer(text) if m.end() > m.start())
        raw.sort(key=lambda r: (r[0] - r[1], r[0]))
        taken = bytearray(len(text))
        kept: list[tuple[int, int, str]] = []
        for start, end, chron in raw:
            if taken.find(1, start, end) == -1:
                taken[start:end] = b"\x01" * (end - start)
                kept.append((start, end, chron))
        return sorted(kept)

    def attribute(
        self,
        text: str,
        ann: AnnotatedText,
        matches: list[tuple[int, int, str]],
        l5: list[DxMention],
        owners: list[DxMention],
    ) -> list[Marker]:
        """Who owns each marker: the L5 finding, another diagnosis in its clause, or nobody ("free")."""
        l5_clauses = {x.clause for x in l5}
        owner_of: dict[Span, str] = {}
        for o in owners:
            owner_of.setdefault(o.clause, o.name)
        muscles: dict[Span, str] = {}
        out: list[Marker] = []
        for start, end, chron in matches:
            clause, sent = ann.clause_at(start), ann.sentence_at(start)
            if clause is None or sent is None:
                continue
            current = not (ann.assertion(start, end).flags & NOT_CURRENT)
            if clause in l5_clauses:
                owner = "L5"
            elif clause in owner_of:
                owner = owner_of[clause]
            else:
                if clause not in muscles:
                    other = self._other_muscle.search(text, *clause)
                    muscles[clause] = (
                        "other-muscles" if other and not self._l5_muscle.search(text, *clause) else "free"
                    )
                owner = muscles[clause]
            out.append(Marker(start, end, chron, current, clause, sent, owner))
        return out

    def chronicity(
        self, ann: AnnotatedText, spans: list[Span], markers: list[Marker], marker_mask: bytearray
    ) -> str | None:
        """Time course from the L5 finding's markers plus chronicity words ("chronic", "acute on chronic")."""
        text = ann.text
        acute = any(m.chronicity in ("acute", "both") for m in markers)
        chronic = any(m.chronicity in ("chronic", "both") for m in markers)
        for a, b in dict.fromkeys(spans):
            for kind, rx in (("acute", self._acute_word), ("chronic", self._chronic_word)):
                for m in rx.finditer(text, a, b):
                    span = (m.start(), m.end())
                    if marker_mask.find(1, *span) != -1:  # "active" inside "no active denervation"
                        continue
                    if ann.assertion(*span).flags & NOT_CURRENT:
                        continue
                    acute = acute or kind == "acute"
                    chronic = chronic or kind == "chronic"
        if acute and chronic:
            return "chronic-active"
        return "acute" if acute else "chronic" if chronic else None
