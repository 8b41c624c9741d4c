"""Laterality of an EMG finding: left, right or bilateral, from the finding's clause outwards.

Why outwards: the side is usually written next to the finding ("left L5 radiculopathy"), but some reports
state it once for the whole study ("Abnormal EMG of the left lower extremity. ... L5 ..."). Wording lives in
the ``laterality`` block of ``knowledge/emg_text.yaml``.

Why an index: an impression may repeat its finding hundreds of times in one long sentence. Searching the
clause and the sentence again for every mention made the cost mentions x sentence length (20,000 characters
took seconds). The side words are found once per text, each lookup is a binary search, and the
whole-impression fallback is computed once per text, so reading stays linear in the text's length.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from hooks.nlp.assertion import AnnotatedText, Span
from hooks.nlp.emg_mentions import DxMention
from hooks.nlp.textprep import icase

_RANK = {"left": 0, "right": 1, "abbrev": 2}  # tie-break between equally near words: the old scan order


class LateralityReader:
    """Compiled side words plus the "L"/"R" abbreviations used before muscle and root names."""

    def __init__(self, lat: Mapping[str, Any]):
        self._bilateral = icase(lat["bilateral"])
        self._left = icase(lat["left"])
        self._right = icase(lat["right"])
        # The context is captured inside the look-ahead so a lookup can tell whether it lies inside a span.
        self._lr_abbrev = re.compile(rf"\b(?P<side>[LR])\b(?=(?P<ctx>(?i:{lat['abbreviation_context']})))")

    def index(self, text: str, ann: AnnotatedText, owners: list[DxMention]) -> SideIndex:
        """Every side word of ``text``, found once; ``owners`` own their clauses (:meth:`SideIndex.of`)."""
        bilateral = [(m.start(), m.end()) for m in self._bilateral.finditer(text)]
        hits: list[tuple[int, int, int, str]] = []  # (start, rank, end of match and context, side)
        for side, rx in (("left", self._left), ("right", self._right)):
            hits.extend((m.start(), _RANK[side], m.end(), side) for m in rx.finditer(text))
        for m in self._lr_abbrev.finditer(text):
            side = "left" if m.group("side") == "L" else "right"
            hits.append((m.start(), _RANK["abbrev"], m.end("ctx"), side))
        hits.sort()
        return SideIndex(ann, bilateral, hits, owners)


class SideIndex:
    """Side words of one text with O(log n) lookups per span."""

    def __init__(
        self,
        ann: AnnotatedText,
        bilateral: list[Span],
        hits: list[tuple[int, int, int, str]],
        owners: list[DxMention],
    ):
        self._ann = ann
        self._bilateral = bilateral
        self._bilateral_starts = [a for a, _ in bilateral]
        self._hits = hits
        self._hit_starts = [h[0] for h in hits]
        self._owned = {o.clause for o in owners if o.current}
        self._fallback: str | None = None
        self._fallback_done = False

    def _bilateral_in(self, span: Span) -> bool:
        i = bisect_left(self._bilateral_starts, span[0])
        while i < len(self._bilateral) and self._bilateral[i][0] < span[1]:
            if self._bilateral[i][1] <= span[1]:
                return True
            i += 1
        return False

    def side_in(self, span: Span, anchor: int) -> str | None:
        """Laterality inside ``span``; the word nearest ``anchor`` wins unless both sides are named."""
        s0, s1 = span
        if self._bilateral_in(span):
            return "bilateral"
        lo = bisect_left(self._hit_starts, s0)
        hi = bisect_left(self._hit_starts, s1)
        mid = min(max(bisect_left(self._hit_starts, anchor, lo, hi), lo), hi)
        best: tuple[int, int, int, str] | None = None
        for rng in (range(mid - 1, lo - 1, -1), range(mid, hi)):  # nearest before, nearest at or after
            for k in rng:
                start, rank, end, side = self._hits[k]
                if end > s1:  # only words near the span's end can reach past it: skip them
                    continue
                key = (abs(start - anchor), rank, start, side)
                if best is None or key < best:
                    best = key
                break
        return None if best is None else best[3]

    def of(self, concept: DxMention) -> str | None:
        """The side of ``concept``: its clause, its sentence, else the one side the impression names."""
        for span in (concept.clause, concept.sentence):
            side = self.side_in(span, concept.start)
            if side:
                return side
        if not self._fallback_done:
            self._fallback, self._fallback_done = self._whole_impression(), True
        return self._fallback

    def _whole_impression(self) -> str | None:
        """The one side the impression names outside the clauses other diagnoses own ("Abnormal EMG of the
        left lower extremity. ... L5 ..."); the same for every mention of the text, so computed once."""
        ann = self._ann
        sides = set()
        for sent in ann.sentences:
            for clause in ann.clauses(sent):
                if clause in self._owned:
                    continue
                side = self.side_in(clause, clause[0])
                if side and not (ann.assertion(*clause).negated and side != "bilateral"):
                    sides.add(side)
        return sides.pop() if len(sides) == 1 else None
