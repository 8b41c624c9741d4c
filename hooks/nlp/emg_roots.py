"""Root and level notation in EMG text: "L5", "L4-5", "L5-S1", "L5 and S1", "fifth lumbar root".

Why its own module: roots are written as atoms, ranges and lists, and a range (L5-S1) may name a disc level
rather than roots. The parser groups them once per text; :mod:`hooks.nlp.emg_mentions` links the groups to
radiculopathy words. Notation lives in the ``roots`` block of ``knowledge/emg_text.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hooks.nlp.textprep import icase


@dataclass(frozen=True)
class RootGroup:
    start: int
    end: int
    roots: tuple[str, ...]
    multi: bool
    disc: bool  # followed by a disc/imaging word ("L4-5 disc herniation")


class RootParser:
    """Compiled root notation; ``target`` is the root Rule A asks about (L5)."""

    def __init__(self, roots: Mapping[str, Any]):
        self._atom = icase(roots["atom"])
        self._root_words = [(icase(p), r) for p, r in (roots.get("words") or {}).items()]
        self._range_tail = icase(roots["range_tail"])
        self._joiner = icase(roots["joiner"])
        self._disc = icase(roots["disc_context"])
        self.root_noun: re.Pattern[str] = icase(roots["root_noun"])
        self.root_pathology: re.Pattern[str] = icase(roots["root_pathology"])
        self.order: list[str] = list(roots["order"])
        self.target = str(roots.get("target", "L5"))

    def _expand(self, first: str, last: str) -> tuple[str, ...] | None:
        if first not in self.order or last not in self.order:
            return None
        i, j = self.order.index(first), self.order.index(last)
        return tuple(self.order[i : j + 1]) if j > i else None

    def groups(self, text: str) -> list[RootGroup]:
        """Every root group in ``text``, left to right, ranges expanded ("L4-S1" -> L4, L5, S1)."""
        atoms: list[tuple[int, int, str]] = [
            (m.start(), m.end(), f"{m.group(1).upper()}{m.group(2)}") for m in self._atom.finditer(text)
        ]
        for rx, root in self._root_words:
            atoms.extend((m.start(), m.end(), root) for m in rx.finditer(text))
        atoms.sort()
        by_start = {a[0]: a for a in atoms}
        groups: list[RootGroup] = []
        pos = -1
        for start, end, root in atoms:
            if start < pos:
                continue
            roots: list[str] = []
            multi = False
            cur_end, cur_root = end, root
            while True:
                tail = self._range_tail.match(text, cur_end)
                span = None
                if tail:
                    letter = (tail.group(1) or cur_root[0]).upper()
                    span = self._expand(cur_root, f"{letter}{tail.group(2)}")
                if span:
                    roots.extend(span)
                    multi, cur_end = True, tail.end()
                else:
                    roots.append(cur_root)
                join = self._joiner.match(text, cur_end)
                nxt = by_start.get(join.end()) if join else None
                if nxt is None:
                    break
                multi, cur_end, cur_root = True, nxt[1], nxt[2]
            ordered = tuple(dict.fromkeys(roots))
            disc = bool(self._disc.match(text, cur_end))
            groups.append(RootGroup(start, cur_end, ordered, multi and len(ordered) > 1, disc))
            pos = cur_end
        return groups
