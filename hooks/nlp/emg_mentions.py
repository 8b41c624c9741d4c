"""Radiculopathy and other-diagnosis mentions in an EMG impression, each with its ConText assertion.

Why: a radiculopathy word only proves an L5 finding when a root is linked to it ("left L5 radiculopathy",
"radiculopathies at L5 and S1", "L5 nerve root involvement") and no trigger negates, hedges or dates it.
Other diagnoses (mimics such as fibular neuropathy) are found too, because they own the axon-loss markers
of their clause. Wording lives in the ``radiculopathy`` and ``diagnoses`` blocks of
``knowledge/emg_text.yaml``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hooks.nlp.assertion import AnnotatedText, Assertion, Span
from hooks.nlp.emg_roots import RootGroup, RootParser
from hooks.nlp.textprep import icase

#: Assertion categories that stop a mention from being a current EMG finding.
NOT_CURRENT = frozenset({"negated", "uncertain", "hypothetical", "historical", "family"})
OTHER_DX = "other diagnosis"  # a diagnosis that owns axon-loss markers but is not reported as a mimic


@dataclass(frozen=True)
class DxMention:
    """A radiculopathy mention (roots may be empty: level not stated) or another diagnosis."""

    start: int
    end: int
    name: str
    roots: tuple[str, ...]
    multi: bool
    assertion: Assertion
    clause: Span
    sentence: Span

    @property
    def current(self) -> bool:
        return not (self.assertion.flags & NOT_CURRENT)


class MentionFinder:
    """Compiled diagnosis wording plus the root parser; finds mentions in an annotated impression."""

    def __init__(self, knowledge: Mapping[str, Any], roots: RootParser):
        self.roots = roots
        limits = knowledge.get("limits") or {}
        self._before_chars = int(limits.get("root_before_term_chars", 40))
        self._after_chars = int(limits.get("root_after_term_chars", 60))
        radic = knowledge["radiculopathy"]
        self.term = icase(radic["term"])
        self._between_before = icase(radic["between_before"])
        self._alternative_gap = icase(radic["alternative_gap"])
        self._alternative_max_chars = int(limits.get("alternative_gap_max_chars", 80))
        dx = knowledge["diagnoses"]
        self._mimics = [(m["name"], icase(m["pattern"])) for m in dx["mimics"]]
        self._other_dx = icase(dx["other"])

    # ------------------------------------------------------------------------------------------ root links
    def _root_before(
        self, text: str, groups: list[RootGroup], ends: list[int], term: Span, clause: Span
    ) -> RootGroup | None:
        """The root group written just before a radiculopathy word, with only modifiers in between."""
        i = bisect_right(ends, term[0]) - 1
        if i < 0:
            return None
        g = groups[i]
        if (
            g.start >= clause[0]
            and term[0] - g.end <= self._before_chars
            and self._between_before.match(text[g.end : term[0]])
        ):
            return g
        return None

    def _root_after(
        self, text: str, groups: list[RootGroup], starts: list[int], term: Span, clause: Span
    ) -> RootGroup | None:
        """A root group shortly after the word ("radiculopathy at the L5 level"), not a disc level."""
        for i in range(bisect_left(starts, term[1]), len(groups)):  # no slice: a copy per word is quadratic
            g = groups[i]
            if g.start - term[1] > self._after_chars or g.end > clause[1]:
                return None
            if g.disc:
                continue
            gap = text[term[1] : g.start]
            if (
                self.term.search(gap)
                or self._other_dx.search(gap)
                or any(rx.search(gap) for _, rx in self._mimics)
            ):
                return None
            return g
        return None

    # ------------------------------------------------------------------------------------------ mentions
    @staticmethod
    def _span_mention(
        ann: AnnotatedText, span: Span, name: str, roots: tuple[str, ...], multi: bool
    ) -> DxMention | None:
        sent = ann.sentence_at(span[0])
        clause = ann.clause_at(span[0])
        if sent is None or clause is None:
            return None
        return DxMention(span[0], span[1], name, roots, multi, ann.assertion(*span), clause, sent)

    def radiculopathies(self, text: str, ann: AnnotatedText) -> list[DxMention]:
        """Radiculopathy words with their linked roots, then named roots with a lesion word in the clause."""
        groups = self.roots.groups(text)
        starts, ends = [g.start for g in groups], [g.end for g in groups]
        taken = bytearray(len(text))
        out: list[DxMention] = []
        for m in self.term.finditer(text):
            clause = ann.clause_at(m.start())
            if clause is None:
                continue
            g = self._root_before(text, groups, ends, m.span(), clause) or self._root_after(
                text, groups, starts, m.span(), clause
            )
            span = (min(g.start, m.start()), max(g.end, m.end())) if g else m.span()
            if taken.find(1, *span) != -1:
                continue
            mention = self._span_mention(
                ann, span, "radiculopathy", g.roots if g else (), g.multi if g else False
            )
            if mention:
                taken[span[0] : span[1]] = b"\x01" * (span[1] - span[0])
                out.append(mention)
        pathology: dict[Span, bool] = {}
        for g in groups:
            noun = self.roots.root_noun.match(text, g.end)
            if not noun or g.disc:
                continue
            span = (g.start, noun.end())
            clause = ann.clause_at(g.start)
            if clause is None or taken.find(1, *span) != -1:
                continue
            if clause not in pathology:
                pathology[clause] = bool(self.roots.root_pathology.search(text, clause[0], clause[1]))
            if not pathology[clause]:
                continue
            mention = self._span_mention(ann, span, "root lesion", g.roots, g.multi)
            if mention:
                taken[span[0] : span[1]] = b"\x01" * (span[1] - span[0])
                out.append(mention)
        return sorted(out, key=lambda x: x.start)

    def diagnoses(self, text: str, ann: AnnotatedText) -> list[DxMention]:
        """Mimics (named) and other diagnoses (:data:`OTHER_DX`); overlapping matches go to the first rule."""
        out: list[DxMention] = []
        taken = bytearray(len(text))
        for name, rx in [*self._mimics, (OTHER_DX, self._other_dx)]:
            for m in rx.finditer(text):
                if m.end() == m.start() or taken.find(1, m.start(), m.end()) != -1:
                    continue
                mention = self._span_mention(ann, m.span(), name, (), False)
                if mention:
                    taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
                    out.append(mention)
        return sorted(out, key=lambda x: x.start)

    def alternative(self, text: str, mention: DxMention, others: list[DxMention]) -> bool:
        """Is ``mention`` offered as one of alternatives ("L5 radiculopathy or peroneal neuropathy")?"""
        return self.alternatives(text, others).offered(mention)

    def alternatives(self, text: str, mentions: list[DxMention]) -> Alternatives:
        """An index of ``mentions`` that answers :meth:`alternative` for each of them in O(log n)."""
        return Alternatives(text, mentions, self._alternative_gap, self._alternative_max_chars)


class Alternatives:
    """Mentions grouped by clause and sorted, so a mention is compared only with its near neighbours.

    Comparing every mention with every other one cost mentions squared: an impression repeating
    "L5 radiculopathy" a thousand times in one clause took a quarter of a second. A gap longer than
    ``limits.alternative_gap_max_chars`` is never an alternative ("or" and a few words), so only the mentions
    that close are looked at.
    """

    def __init__(self, text: str, mentions: list[DxMention], gap: re.Pattern[str], max_chars: int):
        self._text = text
        self._gap = gap
        self._max = max_chars
        self._by_clause: dict[Span, tuple[list[DxMention], list[int], list[DxMention], list[int]]] = {}
        groups: dict[Span, list[DxMention]] = {}
        for m in mentions:
            groups.setdefault(m.clause, []).append(m)
        for clause, group in groups.items():
            by_start = sorted(group, key=lambda m: m.start)
            by_end = sorted(group, key=lambda m: m.end)
            self._by_clause[clause] = (by_start, [m.start for m in by_start], by_end, [m.end for m in by_end])

    def offered(self, mention: DxMention) -> bool:
        group = self._by_clause.get(mention.clause)
        if group is None:
            return False
        by_start, starts, by_end, ends = group
        text, limit = self._text, self._max
        i = bisect_left(starts, mention.end)  # mentions after this one, nearest first
        while i < len(by_start) and starts[i] - mention.end <= limit:
            other = by_start[i]
            if other is not mention and self._gap.match(text[mention.end : other.start]):
                return True
            i += 1
        j = bisect_right(ends, mention.start) - 1  # mentions before it, nearest first
        while j >= 0 and mention.start - ends[j] <= limit:
            other = by_end[j]
            if other is not mention and self._gap.match(text[other.end : mention.start]):
                return True
            j -= 1
        return False
