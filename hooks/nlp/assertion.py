"""What ConText says about a mention, and the per-text index that answers it quickly.

Why a separate module: the data model (categories, :class:`Assertion`, :class:`Trigger`, :class:`Mention`)
and the scope index (:class:`AnnotatedText`) are shared by both engines (:mod:`hooks.nlp.context` and the
optional :mod:`hooks.nlp.medspacy_context`) and read by the EMG analyser; none of it compiles rules.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

#: Assertion categories, in tie-break priority order (an equally long match of an earlier one wins).
CATEGORIES: tuple[str, ...] = ("negated", "uncertain", "hypothetical", "historical", "family", "not_new")
#: Categories that stop a mention from counting as a current, affirmed finding (red-flag default).
DEFAULT_EXCLUDE: frozenset[str] = frozenset({"negated", "historical", "hypothetical", "family", "not_new"})
#: For findings that still count when long-standing (an MRI's "stable L4-5 extrusion"): "chronic" is allowed.
FINDING_EXCLUDE: frozenset[str] = DEFAULT_EXCLUDE - {"not_new"}


@dataclass(frozen=True)
class Assertion:
    """What the triggers covering a mention say about it."""

    negated: bool = False
    uncertain: bool = False
    hypothetical: bool = False
    historical: bool = False
    family: bool = False
    not_new: bool = False
    triggers: tuple[str, ...] = ()

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(c for c in CATEGORIES if getattr(self, c))

    def affirmed(self, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> bool:
        """True when none of the ``exclude`` categories applies."""
        return not (self.flags & frozenset(exclude))


@dataclass(frozen=True)
class Trigger:
    """A trigger match with its resolved scope (character offsets into the annotated text)."""

    category: str
    direction: str
    start: int
    end: int
    scope_start: int
    scope_end: int
    text: str


@dataclass(frozen=True)
class Mention:
    """One regex match with its sentence and assertion."""

    text: str
    start: int
    end: int
    sentence: str
    assertion: Assertion


Span = tuple[int, int]


class AnnotatedText:
    """A text split into sentences and clauses, with every trigger's scope resolved. Built per text.

    Lookups are O(log n): scopes are merged per category into disjoint intervals, so even a 20,000-character
    wall of triggers (no sentence ends) answers each mention quickly.
    """

    def __init__(self, text: str, sentences: list[Span], triggers: list[Trigger], terminators: list[Span]):
        self.text = text
        self.sentences = sentences
        self.triggers = triggers
        self.terminators = sorted(terminators)
        self._starts = [s for s, _ in sentences]
        self._term_starts = [a for a, _ in self.terminators]
        self._term_ends = [b for _, b in self.terminators]
        self._cover: dict[str, tuple[list[int], list[int]]] = {}
        self._by_category: dict[str, list[Trigger]] = {}
        for trig in sorted(triggers, key=lambda t: (t.scope_start, t.scope_end)):
            if trig.scope_end > trig.scope_start:
                self._by_category.setdefault(trig.category, []).append(trig)
        self._scope_starts = {c: [t.scope_start for t in ts] for c, ts in self._by_category.items()}
        self._scope_ends = {c: sorted(t.scope_end for t in ts) for c, ts in self._by_category.items()}
        self._by_start = sorted(triggers, key=lambda t: t.start)
        self._trigger_starts = [t.start for t in self._by_start]
        self._longest = max((t.end - t.start for t in triggers), default=0)
        for category, trigs in self._by_category.items():
            merged: list[list[int]] = []
            for trig in trigs:
                if merged and trig.scope_start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], trig.scope_end)
                else:
                    merged.append([trig.scope_start, trig.scope_end])
            self._cover[category] = ([a for a, _ in merged], [b for _, b in merged])

    def sentence_index(self, pos: int) -> int | None:
        i = bisect_right(self._starts, pos) - 1
        if i >= 0 and self.sentences[i][0] <= pos < max(self.sentences[i][1], self.sentences[i][0] + 1):
            return i
        return None

    def sentence_at(self, pos: int) -> Span | None:
        i = self.sentence_index(pos)
        return None if i is None else self.sentences[i]

    def clauses(self, sentence: Span) -> list[Span]:
        """The sentence cut at terminators (";", "but", ":" ...): the unit for linking words together."""
        s0, s1 = sentence
        lo = bisect_right(self._term_starts, s0 - 1)
        hi = bisect_right(self._term_starts, s1)
        out: list[Span] = []
        start = s0
        for a, b in self.terminators[lo:hi]:
            if b > s1:
                break
            if a > start:
                out.append((start, a))
            start = max(start, b)
        if start < s1:
            out.append((start, s1))
        return out or [sentence]

    def clause_at(self, pos: int) -> Span | None:
        sent = self.sentence_at(pos)
        if sent is None:
            return None
        s0, s1 = sent
        i = bisect_right(self._term_ends, pos) - 1
        start = max(s0, self._term_ends[i]) if i >= 0 else s0
        j = bisect_right(self._term_starts, pos)
        end = min(s1, self._term_starts[j]) if j < len(self._term_starts) else s1
        return (start, end) if start < end else sent

    def covered(self, category: str, start: int, end: int) -> bool:
        """Does any ``category`` trigger's scope overlap [start, end)?"""
        cover = self._cover.get(category)
        if not cover:
            return False
        starts, ends = cover
        i = bisect_right(starts, end - 1) - 1
        return i >= 0 and ends[i] > start

    def within(self, start: int, end: int) -> list[Trigger]:
        """Triggers whose own words (not their scope) overlap [start, end)."""
        lo = bisect_left(self._trigger_starts, start - self._longest)
        hi = bisect_left(self._trigger_starts, end)
        return [t for t in self._by_start[lo:hi] if t.end > start]

    def assertion(self, start: int, end: int, ignore: Iterable[Trigger] = ()) -> Assertion:
        """Union of the categories of every trigger whose scope overlaps [start, end), except `ignore`."""
        hits = {c: True for c in self._cover if self.covered(c, start, end)}
        skip = frozenset(ignore)
        if skip:  # only for a mention that holds a trigger in its own words
            hits = {c: True for c in hits if self._covering_count(c, start, end, skip) > 0}
        if not hits:
            return Assertion()
        names: list[str] = []
        for category in hits:  # name up to three triggers per category (evidence / debugging only)
            trigs = self._by_category[category]
            i = bisect_right(self._scope_starts[category], end - 1)
            found = 0
            for trig in reversed(trigs[max(0, i - 32) : i]):
                if trig.scope_end > start and trig.scope_start < end and trig not in skip:
                    names.append(f"{category}:{trig.text}")
                    found += 1
                    if found == 3:
                        break
        return Assertion(**hits, triggers=tuple(names))

    def _covering_count(self, category: str, start: int, end: int, skip: frozenset[Trigger]) -> int:
        """How many ``category`` triggers outside ``skip`` have a scope overlapping [start, end), in O(log n).

        A scope [a, b) overlaps when a < end and b > start; since a <= b, those with b <= start are a subset
        of those with a < end, so the count is a difference of two binary searches. (Listing the covering
        triggers instead cost every earlier trigger per mention: quadratic on a note that repeats
        "absent anal wink".)
        """
        starting = bisect_left(self._scope_starts.get(category, []), end)
        ended = bisect_right(self._scope_ends.get(category, []), start)
        skipped = 0
        for t in skip:  # a trigger counts when it is in the index: its category, a non-empty scope
            if (
                t.category == category
                and t.scope_start < t.scope_end
                and t.scope_start < end
                and t.scope_end > start
            ):
                skipped += 1
        return starting - ended - skipped

    def sentence_text(self, span: Span) -> str:
        return self.text[span[0] : span[1]]
