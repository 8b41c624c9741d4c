"""Laterality of an EMG finding: left, right or bilateral, from the finding's clause outwards.

Why outwards: the side is usually written next to the finding ("left L5 radiculopathy"), but some reports
state it once for the whole study ("Abnormal EMG of the left lower extremity. ... L5 ..."). Wording lives in
the ``laterality`` block of ``knowledge/emg_text.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hooks.nlp.assertion import AnnotatedText, Span
from hooks.nlp.emg_mentions import DxMention
from hooks.nlp.textprep import icase


class LateralityReader:
    """Compiled side words plus the "L"/"R" abbreviations used before muscle and root names."""

    def __init__(self, lat: Mapping[str, Any]):
        self._bilateral = icase(lat["bilateral"])
        self._left = icase(lat["left"])
        self._right = icase(lat["right"])
        self._lr_abbrev = re.compile(rf"\b(?P<side>[LR])\b(?=(?i:{lat['abbreviation_context']}))")

    def _side_in(self, text: str, span: Span, anchor: int) -> str | None:
        """Laterality inside ``span``; the mention nearest ``anchor`` wins unless both sides are named."""
        chunk = text[span[0] : span[1]]
        if self._bilateral.search(chunk):
            return "bilateral"
        hits: list[tuple[int, str]] = []
        for side, rx in (("left", self._left), ("right", self._right)):
            hits.extend((span[0] + m.start(), side) for m in rx.finditer(chunk))
        for m in self._lr_abbrev.finditer(chunk):
            hits.append((span[0] + m.start(), "left" if m.group("side") == "L" else "right"))
        if not hits:
            return None
        return min(hits, key=lambda h: abs(h[0] - anchor))[1]

    def of(self, text: str, ann: AnnotatedText, concept: DxMention, owners: list[DxMention]) -> str | None:
        """The side of ``concept``: its clause, its sentence, else the one side the impression names."""
        for span in (concept.clause, concept.sentence):
            side = self._side_in(text, span, concept.start)
            if side:
                return side
        # Fall back to the impression as a whole ("Abnormal EMG of the left lower extremity. ... L5 ...").
        owned = {o.clause for o in owners if o.current}
        sides = set()
        for sent in ann.sentences:
            for clause in ann.clauses(sent):
                if clause in owned:
                    continue
                side = self._side_in(text, clause, clause[0])
                if side and not (ann.assertion(*clause).negated and side != "bilateral"):
                    sides.add(side)
        return sides.pop() if len(sides) == 1 else None
