"""EMG/NCS report text understanding: does this impression prove an L5 radiculopathy with axon loss?

Rule A (brief section 4.1) fires on an *EMG-proven L5 radiculopathy with axon loss*. Codes almost never carry
the root level or axon loss (brief section 0.2), so they must be read from the report text, and the text is
hostile: indications repeat the question ("r/o L5 radiculopathy"), impressions pair a positive finding with a
negated differential list, hedge ("cannot exclude"), cite history, use ranges (L4-5, L5-S1) and describe
mimics (fibular neuropathy with axon loss). The pipeline here is:

1. prepare: strip HTML (keeping block structure), normalise, cap the length (``truncated`` flag);
2. scope: read only IMPRESSION/CONCLUSION/INTERPRETATION/SUMMARY sections, never INDICATION/HISTORY; with no
   header at all the whole text is read and confidence drops one level;
3. find radiculopathy mentions and link them to roots written before ("left L5 radiculopathy") or just after
   ("radiculopathies at L5 and S1"), plus named roots with a lesion word ("L5 nerve root involvement");
4. assert each mention with the ConText engine (:mod:`hooks.text_context`): negated, uncertain,
   hypothetical, historical or family mentions are not current findings;
5. attribute axon-loss markers: a clause that names another current diagnosis owns its markers, so a mimic's
   axon loss never makes an L5 radiculopathy positive; diagnosis-free marker sentences count unless every
   muscle they name lies outside the L5 myotome.

All wording lives in ``knowledge/emg_text.yaml``. The analyser is built once (:meth:`EmgTextAnalyzer.load`) at
start-up and is read-only afterwards. The module is pure: strings in, a frozen dataclass out.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hooks.text_context import (
    AnnotatedText,
    Assertion,
    ContextEngine,
    Span,
    html_to_text,
    load_knowledge,
    looks_like_html,
    normalize_text,
)

__all__ = ["EmgTextAnalyzer", "EmgTextFinding"]

_CONFIDENCE = ("high", "medium", "low")
#: Assertion categories that stop a mention from being a current EMG finding.
_NOT_CURRENT = frozenset({"negated", "uncertain", "hypothetical", "historical", "family"})
_MAX_EVIDENCE = 300
_OTHER_DX = "other diagnosis"  # a diagnosis that owns axon-loss markers but is not reported as a mimic


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


@dataclass(frozen=True)
class _Header:
    start: int  # where the header text begins
    content: int  # where the section body begins
    name: str
    kind: str  # include | exclude | data | other


@dataclass(frozen=True)
class _RootGroup:
    start: int
    end: int
    roots: tuple[str, ...]
    multi: bool
    disc: bool  # followed by a disc/imaging word ("L4-5 disc herniation")


@dataclass(frozen=True)
class _Mention:
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
        return not (self.assertion.flags & _NOT_CURRENT)


@dataclass(frozen=True)
class _Marker:
    start: int
    end: int
    chronicity: str
    current: bool
    clause: Span
    sentence: Span
    owner: str  # "L5" | "free" | a diagnosis name | "other-muscles"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


class EmgTextAnalyzer:
    """Compiled EMG text knowledge + ConText engine. Build once with :meth:`load`; call :meth:`analyze`."""

    def __init__(self, knowledge: Mapping[str, Any], engine: ContextEngine):
        self.knowledge_version = str(knowledge["version"])
        self.engine = engine
        limits = knowledge.get("limits") or {}
        self.max_chars = int(limits.get("max_chars", 20000))
        self.max_html_chars = int(limits.get("max_html_chars", 5 * self.max_chars))
        self._before_chars = int(limits.get("root_before_term_chars", 40))
        self._after_chars = int(limits.get("root_after_term_chars", 60))

        sec = knowledge["sections"]
        self._headers: list[tuple[str, str, re.Pattern[str]]] = []
        for kind in ("exclude", "include", "data", "other"):  # exclude first: "CLINICAL SUMMARY" is history
            for item in sec.get(kind) or []:
                self._headers.append((kind, item["name"], _rx(rf"(?:{item['pattern']})")))
        self._generic_header = re.compile(rf"(?:{sec['generic_header']})")
        self._generic_max_words = int(sec.get("generic_header_max_words", 4))
        self._line_header = re.compile(
            r"^[ \t]*(?:[-*#>\u2022|]+[ \t]*)?(?P<h>[A-Za-z][A-Za-z0-9 /&()'.,-]{0,60}?)[ \t]*(?P<sep>:|$)"
        )
        self._inline_header = re.compile(r"(?<=[.;!?])[ \t]+(?P<h>[A-Z][A-Z /&()-]{1,50}?)[ \t]*:")

        roots = knowledge["roots"]
        self._atom = _rx(roots["atom"])
        self._root_words = [(_rx(p), r) for p, r in (roots.get("words") or {}).items()]
        self._range_tail = _rx(roots["range_tail"])
        self._joiner = _rx(roots["joiner"])
        self._disc = _rx(roots["disc_context"])
        self._root_noun = _rx(roots["root_noun"])
        self._root_pathology = _rx(roots["root_pathology"])
        self._order: list[str] = list(roots["order"])
        self._target = str(roots.get("target", "L5"))

        radic = knowledge["radiculopathy"]
        self._term = _rx(radic["term"])
        self._between_before = _rx(radic["between_before"])
        self._alternative_gap = _rx(radic["alternative_gap"])

        axon = knowledge["axon_loss"]
        self._marker_rules = [(m["chronicity"], _rx(m["pattern"])) for m in axon["markers"]]
        words = axon["chronicity_words"]
        self._acute_word = _rx(words["acute"])
        self._chronic_word = _rx(words["chronic"])

        dx = knowledge["diagnoses"]
        self._mimics = [(m["name"], _rx(m["pattern"])) for m in dx["mimics"]]
        self._other_dx = _rx(dx["other"])

        lat = knowledge["laterality"]
        self._bilateral = _rx(lat["bilateral"])
        self._left = _rx(lat["left"])
        self._right = _rx(lat["right"])
        self._lr_abbrev = re.compile(rf"\b(?P<side>[LR])\b(?=(?i:{lat['abbreviation_context']}))")

        mus = knowledge["muscles"]
        self._l5_muscle = _rx(mus["l5_myotome"])
        self._other_muscle = _rx(mus["other"])

    @classmethod
    def load(cls, knowledge_path: Path | None = None, *, backend: str = "regex") -> EmgTextAnalyzer:
        """Read the knowledge file and compile everything (call once at start-up; the result is reusable).

        ``backend="regex"`` (default) runs the built-in ConText engine; ``"medspacy"`` runs the same rules
        through medspaCy's ConText and ``"medspacy-default"`` runs medspaCy's packaged rules (optional
        dependency, slower to build and per text; kept for the benchmark comparison).
        """
        knowledge = load_knowledge(knowledge_path)
        if backend == "regex":
            engine = ContextEngine(knowledge)
        elif backend in ("medspacy", "medspacy-default"):
            from hooks.text_context import MedspacyContextEngine

            engine = MedspacyContextEngine(
                knowledge, rules="default" if backend == "medspacy-default" else "knowledge"
            )
        else:
            raise ValueError(
                f"unknown EMG text backend {backend!r} (expected regex, medspacy or medspacy-default)"
            )
        return cls(knowledge, engine)

    # ------------------------------------------------------------------------------------------ text prep
    def _prepare(self, text: str, content_type: str) -> tuple[str, bool]:
        truncated = False
        raw = text or ""
        if looks_like_html(raw, content_type):
            if len(raw) > self.max_html_chars:
                raw, truncated = raw[: self.max_html_chars], True
            raw = html_to_text(raw)
        elif len(raw) > 2 * self.max_chars:
            raw, truncated = raw[: 2 * self.max_chars], True
        body = normalize_text(raw)
        if len(body) > self.max_chars:
            body, truncated = body[: self.max_chars], True
        return body, truncated

    # ------------------------------------------------------------------------------------------- sections
    def _classify_header(self, label: str, *, generic_ok: bool) -> tuple[str, str] | None:
        label = label.strip(" .-")
        if not label:
            return None
        for kind, name, rx in self._headers:
            if rx.fullmatch(label):
                return kind, name
        if (
            generic_ok
            and self._generic_header.fullmatch(label)
            and len(label.split()) <= self._generic_max_words
        ):
            return "other", label.upper()
        return None

    def _find_headers(self, text: str) -> list[_Header]:
        found: list[_Header] = []
        pos = 0
        for line in text.split("\n"):
            m = self._line_header.match(line)
            if m:
                has_colon = m.group("sep") == ":"
                hit = self._classify_header(m.group("h"), generic_ok=has_colon)
                if hit:
                    found.append(_Header(pos + m.start("h"), pos + m.end(), hit[1], hit[0]))
            pos += len(line) + 1
        line_spans = [(h.start, h.content) for h in found]
        line_starts = [a for a, _ in line_spans]
        for m in self._inline_header.finditer(text):
            i = bisect_right(line_starts, m.start("h")) - 1
            if i >= 0 and line_spans[i][0] <= m.start("h") < line_spans[i][1]:
                continue
            hit = self._classify_header(m.group("h"), generic_ok=True)
            if hit:
                found.append(_Header(m.start("h"), m.end(), hit[1], hit[0]))
        return sorted(found, key=lambda h: h.start)

    def _scope(self, text: str) -> tuple[str, str | None, bool]:
        """(text to read, section name(s), confidence dropped?) for a whole report."""
        headers = self._find_headers(text)
        if not headers:
            return text, None, True
        bodies: list[tuple[_Header | None, str]] = [(None, text[: headers[0].start])]
        for i, h in enumerate(headers):
            end = headers[i + 1].start if i + 1 < len(headers) else len(text)
            bodies.append((h, text[h.content : end].strip()))
        include = [(h, b) for h, b in bodies if h is not None and h.kind == "include" and b]
        if include:
            names = list(dict.fromkeys(h.name for h, _ in include))
            return "\n\n".join(b for _, b in include), "+".join(names), False
        # No impression header: read what is neither history nor findings tables, then drop confidence.
        loose = "\n\n".join(b.strip() for h, b in bodies if (h is None or h.kind == "other") and b.strip())
        if not self._term.search(loose):
            loose = "\n\n".join(
                b.strip() for h, b in bodies if (h is None or h.kind != "exclude") and b.strip()
            )
        return loose, None, True

    def impression(self, text: str, content_type: str = "text/plain") -> str | None:
        """The impression/conclusion text of a report (HTML handled), or None when no such header exists."""
        body, _ = self._prepare(text, content_type)
        scoped, section, _ = self._scope(body)
        return scoped if section else None

    # ------------------------------------------------------------------------------------------ roots
    def _expand(self, first: str, last: str) -> tuple[str, ...] | None:
        if first not in self._order or last not in self._order:
            return None
        i, j = self._order.index(first), self._order.index(last)
        return tuple(self._order[i : j + 1]) if j > i else None

    def _root_groups(self, text: str) -> list[_RootGroup]:
        atoms: list[tuple[int, int, str]] = [
            (m.start(), m.end(), f"{m.group(1).upper()}{m.group(2)}") for m in self._atom.finditer(text)
        ]
        for rx, root in self._root_words:
            atoms.extend((m.start(), m.end(), root) for m in rx.finditer(text))
        atoms.sort()
        by_start = {a[0]: a for a in atoms}
        groups: list[_RootGroup] = []
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
            groups.append(_RootGroup(start, cur_end, ordered, multi and len(ordered) > 1, disc))
            pos = cur_end
        return groups

    def _root_before(
        self, text: str, groups: list[_RootGroup], ends: list[int], term: Span, clause: Span
    ) -> _RootGroup | None:
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
        self, text: str, groups: list[_RootGroup], starts: list[int], term: Span, clause: Span
    ) -> _RootGroup | None:
        """A root group shortly after the word ("radiculopathy at the L5 level"), not a disc level."""
        for g in groups[bisect_left(starts, term[1]) :]:
            if g.start - term[1] > self._after_chars or g.end > clause[1]:
                return None
            if g.disc:
                continue
            gap = text[term[1] : g.start]
            if (
                self._term.search(gap)
                or self._other_dx.search(gap)
                or any(rx.search(gap) for _, rx in self._mimics)
            ):
                return None
            return g
        return None

    # ------------------------------------------------------------------------------------------ mentions
    def _span_mention(
        self, ann: AnnotatedText, span: Span, name: str, roots: tuple[str, ...], multi: bool
    ) -> _Mention | None:
        sent = ann.sentence_at(span[0])
        clause = ann.clause_at(span[0])
        if sent is None or clause is None:
            return None
        return _Mention(span[0], span[1], name, roots, multi, ann.assertion(*span), clause, sent)

    def _radiculopathies(self, text: str, ann: AnnotatedText) -> list[_Mention]:
        groups = self._root_groups(text)
        starts, ends = [g.start for g in groups], [g.end for g in groups]
        taken = bytearray(len(text))
        out: list[_Mention] = []
        for m in self._term.finditer(text):
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
            noun = self._root_noun.match(text, g.end)
            if not noun or g.disc:
                continue
            span = (g.start, noun.end())
            clause = ann.clause_at(g.start)
            if clause is None or taken.find(1, *span) != -1:
                continue
            if clause not in pathology:
                pathology[clause] = bool(self._root_pathology.search(text, clause[0], clause[1]))
            if not pathology[clause]:
                continue
            mention = self._span_mention(ann, span, "root lesion", g.roots, g.multi)
            if mention:
                taken[span[0] : span[1]] = b"\x01" * (span[1] - span[0])
                out.append(mention)
        return sorted(out, key=lambda x: x.start)

    def _diagnoses(self, text: str, ann: AnnotatedText) -> list[_Mention]:
        out: list[_Mention] = []
        taken = bytearray(len(text))
        for name, rx in [*self._mimics, (_OTHER_DX, self._other_dx)]:
            for m in rx.finditer(text):
                if m.end() == m.start() or taken.find(1, m.start(), m.end()) != -1:
                    continue
                mention = self._span_mention(ann, m.span(), name, (), False)
                if mention:
                    taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
                    out.append(mention)
        return sorted(out, key=lambda x: x.start)

    def _marker_matches(self, text: str) -> list[tuple[int, int, str]]:
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

    def _markers(
        self,
        text: str,
        ann: AnnotatedText,
        matches: list[tuple[int, int, str]],
        l5: list[_Mention],
        owners: list[_Mention],
    ) -> list[_Marker]:
        """Who owns each marker: the L5 finding, another diagnosis in its clause, or nobody ("free")."""
        l5_clauses = {x.clause for x in l5}
        owner_of: dict[Span, str] = {}
        for o in owners:
            owner_of.setdefault(o.clause, o.name)
        muscles: dict[Span, str] = {}
        out: list[_Marker] = []
        for start, end, chron in matches:
            clause, sent = ann.clause_at(start), ann.sentence_at(start)
            if clause is None or sent is None:
                continue
            current = not (ann.assertion(start, end).flags & _NOT_CURRENT)
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
            out.append(_Marker(start, end, chron, current, clause, sent, owner))
        return out

    # ------------------------------------------------------------------------------------------ qualifiers
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

    def _laterality(
        self, text: str, ann: AnnotatedText, concept: _Mention, owners: list[_Mention]
    ) -> str | None:
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

    def _chronicity(
        self, ann: AnnotatedText, spans: list[Span], markers: list[_Marker], marker_mask: bytearray
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
                    if ann.assertion(*span).flags & _NOT_CURRENT:
                        continue
                    acute = acute or kind == "acute"
                    chronic = chronic or kind == "chronic"
        if acute and chronic:
            return "chronic-active"
        return "acute" if acute else "chronic" if chronic else None

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
            scoped, section, dropped = self._scope(body)
        return self._analyze_impression(scoped, section, dropped, truncated)

    def _alternative(self, text: str, mention: _Mention, others: list[_Mention]) -> bool:
        """Is ``mention`` offered as one of alternatives ("L5 radiculopathy or peroneal neuropathy")?"""
        for o in others:
            if o.clause != mention.clause or o is mention:
                continue
            if o.start >= mention.end:
                gap = text[mention.end : o.start]
            elif o.end <= mention.start:
                gap = text[o.end : mention.start]
            else:
                continue
            if self._alternative_gap.match(gap):
                return True
        return False

    def _analyze_impression(
        self, text: str, section: str | None, dropped: bool, truncated: bool
    ) -> EmgTextFinding:
        ann = self.engine.annotate(text)
        radics = self._radiculopathies(text, ann)
        dx = self._diagnoses(text, ann)
        radics = [
            replace(
                r,
                assertion=replace(
                    r.assertion, uncertain=True, triggers=(*r.assertion.triggers, "uncertain:or")
                ),
            )
            if self._target in r.roots and self._alternative(text, r, radics + dx)
            else r
            for r in radics
        ]
        l5_all = [r for r in radics if self._target in r.roots]
        l5_current = [r for r in l5_all if r.current]
        unspecified = [r for r in radics if not r.roots]
        other_root = [r for r in radics if r.roots and self._target not in r.roots]
        # Another root's radiculopathy ("right S1 radiculopathy with denervation") owns its clause's markers.
        owners = [d for d in dx if d.current] + [
            replace(r, name="/".join(r.roots) + " radiculopathy") for r in other_root if r.current
        ]
        matches = self._marker_matches(text)
        marker_mask = bytearray(len(text))
        for start, end, _ in matches:
            marker_mask[start:end] = b"\x01" * (end - start)
        markers = self._markers(text, ann, matches, l5_current, owners)
        usable = [m for m in markers if m.current and m.owner in ("L5", "free")]
        axon_loss = bool(usable)
        l5 = bool(l5_current)

        other_roots = tuple(
            root
            for root in self._order
            if root != self._target and any(root in r.roots for r in radics if r.current)
        )
        mimic = next((d.name for d in dx if d.current and d.name != _OTHER_DX), None)

        laterality = chronicity = None
        multi = False
        evidence: list[Span] = []
        if l5_current:
            concept = l5_current[0]
            multi = any(r.multi for r in l5_current)
            sides = {self._laterality(text, ann, r, owners) for r in l5_current} - {None}
            laterality = "bilateral" if len(sides) > 1 else next(iter(sides), None)
            spans = [r.clause for r in l5_current] + [m.clause for m in usable]
            chronicity = self._chronicity(ann, spans, usable, marker_mask) if axon_loss else None
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
