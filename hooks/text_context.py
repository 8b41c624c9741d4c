"""ConText-style assertion engine: is a mention in clinical text affirmed, negated, uncertain, historical...?

Why a small engine of our own rather than a bare regex: clinical sentences routinely carry a positive
finding and a negated list side by side ("Left L5 radiculopathy ... No evidence of plexopathy, ..."), so a
mention's status must come from the triggers whose *scope* covers it, not from the sentence as a whole.
The algorithm is ConText (Harkema et al., J Biomed Inform 2009): triggers with a category and a direction,
scope running to the end of the sentence or the nearest terminator ("but", ";", ...), pseudo-triggers that
switch look-alikes off ("no change"), and the longest overlapping match winning ("does not exclude" is
uncertainty, not the negation "not"). All trigger wording lives in ``knowledge/emg_text.yaml``.

The engine is built once (:meth:`ContextEngine.load`) and is then read-only and thread-safe. It is pure: no
I/O after loading, no FHIR. Besides the EMG analyser, other modules can ask red-flag style questions with
:func:`affirmed_mentions` ("denies saddle anesthesia" -> negated, "new urinary retention" -> affirmed,
"chronic stress incontinence" -> not new).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

DEFAULT_KNOWLEDGE_PATH = Path(__file__).resolve().parent / "knowledge" / "emg_text.yaml"

#: Assertion categories, in tie-break priority order (an equally long match of an earlier one wins).
CATEGORIES: tuple[str, ...] = ("negated", "uncertain", "hypothetical", "historical", "family", "not_new")
#: Categories that stop a mention from counting as a current, affirmed finding (red-flag default).
DEFAULT_EXCLUDE: frozenset[str] = frozenset({"negated", "historical", "hypothetical", "family", "not_new"})
#: For findings that still count when long-standing (an MRI's "stable L4-5 extrusion"): "chronic" is allowed.
FINDING_EXCLUDE: frozenset[str] = DEFAULT_EXCLUDE - {"not_new"}
_PRIORITY = {"pseudo": -1, **{c: i for i, c in enumerate(CATEGORIES)}}
_DIRECTIONS = ("forward", "backward", "bidirectional")


def load_knowledge(path: Path | None = None) -> dict[str, Any]:
    """Read and minimally validate the YAML knowledge file (fail fast at start-up, not per request)."""
    with open(path or DEFAULT_KNOWLEDGE_PATH, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or "version" not in data or "context" not in data:
        raise ValueError(
            f"{path or DEFAULT_KNOWLEDGE_PATH}: not an EMG text knowledge file (version/context)"
        )
    return data


# ------------------------------------------------------------------------------------------------- text prep
_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_HSPACE = re.compile(r"[^\S\n]+")
_EDGE_SPACE = re.compile(r" ?\n ?")


def normalize_text(text: str) -> str:
    """Unicode-normalise and tidy whitespace while keeping line breaks (they carry section structure)."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _DASHES.sub("-", text)
    text = _HSPACE.sub(" ", text)
    return _EDGE_SPACE.sub("\n", text).strip()


_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "tr", "table", "thead", "tbody", "tfoot", "ul", "ol", "dl", "dd", "dt"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "blockquote"),
        *("pre", "hr", "title", "caption", "form", "fieldset", "address", "main", "nav", "aside", "figure"),
    }
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template"})


class _HtmlText(HTMLParser):
    """Collect text; block tags become blank lines, <br> a line break, <li> a bullet (sentence boundaries)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" | ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS or tag == "li":
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            # Source newlines inside HTML are plain whitespace, except in <pre>.
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Strip tags but keep paragraph/line structure so section headers and sentences survive."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(parser.parts))


_HTML_SNIFF = re.compile(
    r"<\s*(?:html|body|p|div|br|table|tr|td|h[1-6]|ul|ol|li|span|b|strong)\b[^>]*>", re.I
)


def looks_like_html(text: str, content_type: str = "text/plain") -> bool:
    """Trust the declared type, but sniff: EHR feeds often label HTML narratives as text/plain."""
    return "html" in (content_type or "").lower() or bool(_HTML_SNIFF.search(text[:4000]))


# ----------------------------------------------------------------------------------------------- data classes
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

    def assertion(self, start: int, end: int) -> Assertion:
        """Union of the categories of every trigger whose scope overlaps [start, end)."""
        hits = {c: True for c in self._cover if self.covered(c, start, end)}
        if not hits:
            return Assertion()
        names: list[str] = []
        for category in hits:  # name up to three triggers per category (evidence / debugging only)
            trigs = self._by_category[category]
            i = bisect_right(self._scope_starts[category], end - 1)
            found = 0
            for trig in reversed(trigs[max(0, i - 32) : i]):
                if trig.scope_end > start and trig.scope_start < end:
                    names.append(f"{category}:{trig.text}")
                    found += 1
                    if found == 3:
                        break
        return Assertion(**hits, triggers=tuple(names))

    def sentence_text(self, span: Span) -> str:
        return self.text[span[0] : span[1]]


# ------------------------------------------------------------------------------------------------ the engine
def _bounded(pattern: str) -> str:
    """Stop word-like triggers from matching inside words ("no" in "normal", "likely" in "unlikely")."""
    lead = "" if re.match(r"^(?:\\[^\w]|[^\w\\(\[])", pattern) else r"(?<![A-Za-z0-9])"
    trail = "" if re.search(r"(?:\\s|\\b|\\[^\w]|[^\w)\]?*+}])$", pattern) else r"(?![A-Za-z0-9])"
    return f"{lead}(?:{pattern}){trail}"


_LEAD = r"(?<![A-Za-z0-9])"


def _alternation(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex per category/direction. The word-start guard shared by most alternatives is hoisted to the
    front so the engine rejects mid-word positions once instead of once per alternative (~3x faster)."""
    pats = sorted({p for p in patterns if p}, key=len, reverse=True)
    if not pats:
        return None
    guarded = [_bounded(p)[len(_LEAD) :] for p in pats if _bounded(p).startswith(_LEAD)]
    free = [_bounded(p) for p in pats if not _bounded(p).startswith(_LEAD)]
    parts = []
    if guarded:
        parts.append(_LEAD + "(?:" + "|".join(f"(?:{g})" for g in guarded) + ")")
    parts.extend(f"(?:{f})" for f in free)
    return re.compile("|".join(parts), re.IGNORECASE)


class ContextEngine:
    """Compiled ConText rules plus the sentence splitter. Build once with :meth:`load`; reuse everywhere."""

    def __init__(self, knowledge: Mapping[str, Any]):
        ctx = knowledge["context"]
        self._rules: list[tuple[str, str, re.Pattern[str]]] = []
        for category in CATEGORIES:
            spec = ctx.get(category) or {}
            for direction in _DIRECTIONS:
                rx = _alternation(spec.get(direction) or [])
                if rx is not None:
                    self._rules.append((category, direction, rx))
        self._pseudo = _alternation(ctx.get("pseudo") or [])
        words = [p[2:] for p in ctx["terminators"] if p.startswith(r"\b")]
        marks = [p for p in ctx["terminators"] if not p.startswith(r"\b")]
        self._terminators = re.compile(
            "|".join(
                [f"(?:{m})" for m in marks] + [_LEAD + "(?:" + "|".join(f"(?:{w})" for w in words) + ")"]
            ),
            re.IGNORECASE,
        )
        sent = knowledge.get("sentences") or {}
        self._abbrev = frozenset(a.lower().rstrip(".") for a in sent.get("abbreviations", []))
        self._wrap_min = int(sent.get("wrapped_line_min_chars", 45))
        self._bullet = re.compile(r"^\s*" + sent.get("bullet", r"(?:[-*]|\d{1,2}[.)])\s+"))
        self.version = str(knowledge.get("version", "unknown"))

    @classmethod
    def load(cls, knowledge_path: Path | None = None) -> ContextEngine:
        """Build the engine from the knowledge file (call once at start-up)."""
        return cls(load_knowledge(knowledge_path))

    # ------------------------------------------------------------------------------------ sentence splitting
    _END = re.compile(r"[.!?]+(?=\s|$)")
    _NEXT_START = re.compile(r"\s+(?=[A-Z0-9(\[\"'*\u2022-])")

    def split_sentences(self, text: str) -> list[Span]:
        """Sentences as (start, end) offsets.

        Line breaks end a sentence unless the line looks like wrapped prose (long, no end punctuation, next
        line not a bullet): HTML lists and templates ("Radiculopathy: None") need breaks, 80-column reports
        do not.
        """
        chunks: list[Span] = []
        pos = 0
        cur: Span | None = None
        prev_line = ""
        for line in text.split("\n"):
            start, end = pos, pos + len(line)
            pos = end + 1
            stripped = line.strip()
            if not stripped:
                if cur:
                    chunks.append(cur)
                cur, prev_line = None, ""
                continue
            if cur is not None and self._line_break(prev_line, line):
                chunks.append(cur)
                cur = None
            lead = len(line) - len(line.lstrip())
            cur = (start + lead, end) if cur is None else (cur[0], end)
            prev_line = stripped
        if cur:
            chunks.append(cur)
        out: list[Span] = []
        for c0, c1 in chunks:
            seg_start = c0
            for m in self._END.finditer(text, c0, c1):
                if not self._is_sentence_end(text, m, c0, c1):
                    continue
                out.append((seg_start, m.end()))
                nxt = m.end()
                while nxt < c1 and text[nxt].isspace():
                    nxt += 1
                seg_start = nxt
            if seg_start < c1:
                out.append((seg_start, c1))
        return [(a, b) for a, b in out if text[a:b].strip()]

    def _line_break(self, prev: str, line: str) -> bool:
        if prev.endswith((".", "!", "?", ";", ":")) or self._bullet.match(line):
            return True
        return len(prev) < self._wrap_min

    def _is_sentence_end(self, text: str, m: re.Match[str], c0: int, c1: int) -> bool:
        if m.end() >= c1:
            return True
        if not self._NEXT_START.match(text, m.end(), c1):
            return False
        if m.group(0) == ".":
            word = re.search(r"([A-Za-z][A-Za-z./]*)$", text[max(c0, m.start() - 12) : m.start()])
            if word and word.group(1).lower().rstrip(".") in self._abbrev:
                return False
        return True

    # ------------------------------------------------------------------------------------------- annotation
    def annotate(self, text: str) -> AnnotatedText:
        """Split ``text`` and resolve every trigger's scope. ``text`` should already be normalised."""
        sentences = self.split_sentences(text)
        found: list[tuple[int, int, int, str, str]] = []  # (-len, priority, start, category, direction)
        for category, direction, rx in self._rules:
            for m in rx.finditer(text):
                if m.end() > m.start():
                    found.append((m.start() - m.end(), _PRIORITY[category], m.start(), category, direction))
        if self._pseudo is not None:
            for m in self._pseudo.finditer(text):
                if m.end() > m.start():
                    found.append((m.start() - m.end(), _PRIORITY["pseudo"], m.start(), "pseudo", "none"))
        found.sort()
        occupied = bytearray(len(text))
        kept: list[tuple[int, int, str, str]] = []
        for neg_len, _prio, start, category, direction in found:
            end = start - neg_len
            if occupied.find(1, start, end) == -1:
                occupied[start:end] = b"\x01" * (end - start)
                kept.append((start, end, category, direction))
        terminators = [
            (m.start(), m.end())
            for m in self._terminators.finditer(text)
            if m.end() > m.start() and occupied.find(1, m.start(), m.end()) == -1
        ]
        term_starts = [a for a, _ in terminators]
        term_ends = [b for _, b in terminators]
        starts = [s for s, _ in sentences]
        triggers: list[Trigger] = []
        for start, end, category, direction in sorted(kept):
            if category == "pseudo":
                continue
            i = bisect_right(starts, start) - 1
            if i < 0 or start >= sentences[i][1]:
                continue
            s0, s1 = sentences[i]
            j = bisect_right(term_ends, start) - 1
            prev_end = term_ends[j] if j >= 0 and term_ends[j] >= s0 else s0
            k = bisect_left(term_starts, end)
            next_start = term_starts[k] if k < len(term_starts) and term_starts[k] < s1 else s1
            scope_start, scope_end = end, end
            if direction in ("forward", "bidirectional"):
                scope_end = next_start
            if direction in ("backward", "bidirectional"):
                scope_start = prev_end
            if direction == "backward":
                scope_end = start
            triggers.append(Trigger(category, direction, start, end, scope_start, scope_end, text[start:end]))
        return AnnotatedText(text, sentences, triggers, terminators)

    # ------------------------------------------------------------------------------------------- questions
    def mentions(
        self, text: str, pattern: str | re.Pattern[str], *, normalized: bool = False
    ) -> list[Mention]:
        """Every match of ``pattern`` with its sentence and assertion."""
        body = text if normalized else normalize_text(text)
        rx = _compile(pattern) if isinstance(pattern, str) else pattern
        matches = [m for m in rx.finditer(body) if m.end() > m.start()]
        if not matches:
            return []
        ann = self.annotate(body)
        out: list[Mention] = []
        for m in matches:
            sent = ann.sentence_at(m.start()) or (m.start(), m.end())
            out.append(
                Mention(m.group(0), m.start(), m.end(), ann.sentence_text(sent), ann.assertion(*m.span()))
            )
        return out

    def affirmed_mentions(
        self, text: str, pattern: str | re.Pattern[str], *, exclude: Iterable[str] = DEFAULT_EXCLUDE
    ) -> list[str]:
        """Sentences holding at least one match of ``pattern`` that no ``exclude`` category covers."""
        excl = frozenset(exclude)
        seen: dict[str, None] = {}
        for mention in self.mentions(text, pattern):
            if mention.assertion.affirmed(excl):
                seen.setdefault(mention.sentence.strip(), None)
        return list(seen)

    def is_negated_mention(self, text: str, pattern: str | re.Pattern[str]) -> bool | None:
        """None when ``pattern`` is absent; True when every match is negated; False otherwise."""
        found = self.mentions(text, pattern)
        if not found:
            return None
        return all(m.assertion.negated for m in found)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@functools.lru_cache(maxsize=4)
def default_engine(knowledge_path: Path | None = None) -> ContextEngine:
    """The shared engine, built on first use (never at import) and cached for the process."""
    return ContextEngine.load(knowledge_path)


def affirmed_mentions(
    text: str,
    pattern: str,
    *,
    engine: ContextEngine | None = None,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
) -> list[str]:
    """Sentences where ``pattern`` (case-insensitive regex) is a current, affirmed mention.

    By default a mention does not count when negated ("denies ..."), historical ("history of ..."),
    hypothetical ("if ...", "to evaluate for ..."), about someone else ("family history") or explicitly not
    new ("chronic", "baseline"). Uncertain mentions ("possible cauda equina") do count: for a red flag,
    doubt is a reason to look, not to stay silent. Pass ``exclude`` to change that.
    """
    return (engine or default_engine()).affirmed_mentions(text, pattern, exclude=exclude)


class MedspacyContextEngine(ContextEngine):
    """The same YAML rules run by medspaCy's ConText component (optional; ``pip install medspacy``).

    Kept so the two engines can be compared on the labelled corpus (``benchmarks/emg_nlp_precision.py
    --backend medspacy``). medspaCy does the trigger matching, overlap pruning and scope/termination; this
    class only converts its modifier scopes to character offsets, so every caller sees the same
    :class:`Assertion`. Sentence boundaries come from :meth:`ContextEngine.split_sentences` for both engines.
    Differences by design of medspaCy: a regex trigger that does not align with token boundaries is dropped,
    and same-category triggers cut each other's scope ("no evidence of X, no Y").
    """

    #: medspaCy's default rule categories mapped to ours (used with ``rules="default"``).
    _DEFAULT_CATEGORIES = {
        "negated_existence": "negated",
        "possible_existence": "uncertain",
        "historical": "historical",
        "hypothetical": "hypothetical",
        "family": "family",
    }

    def __init__(self, knowledge: Mapping[str, Any], *, rules: str = "knowledge"):
        super().__init__(knowledge)
        import logging

        import spacy
        from medspacy.context import ConText, ConTextRule
        from medspacy.custom_tokenizer import create_medspacy_tokenizer

        try:  # PyRuSH (pulled in by medspacy) logs every token through loguru at DEBUG level.
            from loguru import logger as _loguru

            _loguru.disable("PyRuSH")
            _loguru.disable("medspacy")
        except ImportError:  # pragma: no cover - loguru is a medspacy dependency
            pass
        logging.getLogger("medspacy").setLevel(logging.WARNING)
        # Every call warns that the (unused) phrase matcher has no patterns: all our rules are regexes.
        warnings.filterwarnings("ignore", message=r".*\[W036\]", category=UserWarning)

        self._nlp = spacy.blank("en")
        self._nlp.tokenizer = create_medspacy_tokenizer(self._nlp)
        if rules == "default":  # medspaCy's own packaged rules, for comparison only
            self._context = ConText(self._nlp, rules="default", span_attrs=None)
            return
        self._context = ConText(self._nlp, rules=None, span_attrs=None)
        ctx = knowledge["context"]
        rule_list = []
        for category in CATEGORIES:
            for direction in _DIRECTIONS:
                for pattern in (ctx.get(category) or {}).get(direction) or []:
                    rule_list.append(
                        ConTextRule(
                            pattern,
                            category.upper(),
                            pattern=f"(?i){_bounded(pattern)}",
                            direction=direction.upper(),
                        )
                    )
        for pattern in ctx.get("pseudo") or []:
            rule_list.append(
                ConTextRule(pattern, "PSEUDO", pattern=f"(?i){_bounded(pattern)}", direction="PSEUDO")
            )
        for pattern in ctx["terminators"]:
            rule_list.append(
                ConTextRule(pattern, "TERMINATE", pattern=f"(?i){pattern}", direction="TERMINATE")
            )
        self._context.add(rule_list)

    def annotate(self, text: str) -> AnnotatedText:
        sentences = self.split_sentences(text)
        doc = self._nlp.make_doc(text)
        starts = {a for a, _ in sentences}
        for i, tok in enumerate(doc):
            tok.is_sent_start = i == 0 or tok.idx in starts
        doc = self._context(doc)
        triggers: list[Trigger] = []
        for mod in doc._.context_graph.modifiers:
            direction = mod.direction.lower()
            if direction in ("terminate", "pseudo"):
                continue
            (ms, me), (ss, se) = mod.modifier_span, mod.scope_span
            start, end = doc[ms].idx, doc[me - 1].idx + len(doc[me - 1])
            if direction == "forward":
                ss = me
            elif direction == "backward":
                se = ms
            scope_start = doc[ss].idx if ss < len(doc) else len(text)
            scope_end = doc[se - 1].idx + len(doc[se - 1]) if se > ss else scope_start
            category = self._DEFAULT_CATEGORIES.get(mod.category.lower(), mod.category.lower())
            if category not in _PRIORITY:
                continue
            triggers.append(Trigger(category, direction, start, end, scope_start, scope_end, text[start:end]))
        terminators = [(m.start(), m.end()) for m in self._terminators.finditer(text) if m.end() > m.start()]
        return AnnotatedText(text, sentences, triggers, terminators)
