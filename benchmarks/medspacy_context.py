"""The ConText rules of ``knowledge/emg_text.yaml`` run by medspaCy instead of our engine (benchmark only).

Why keep it: the benchmark (``benchmarks/emg_nlp_precision.py --backend medspacy``) compares the two engines
on the labelled corpus. It lives with the benchmark, not in the production package; medspaCy is imported
only when this engine is built (it is the optional ``nlp-compare`` extra).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from hooks.nlp.assertion import CATEGORIES, AnnotatedText, Trigger
from hooks.nlp.context import DIRECTIONS, PRIORITY, ContextEngine, bounded, load_knowledge
from hooks.nlp.emg_analyzer import EmgTextAnalyzer

BACKENDS = ("regex", "medspacy", "medspacy-default")


def build_analyzer(backend: str = "regex") -> EmgTextAnalyzer:
    """The EMG reader on our ConText engine (``regex``), on medspaCy running our rules (``medspacy``) or on
    medspaCy's packaged rules (``medspacy-default``)."""
    if backend == "regex":
        return EmgTextAnalyzer.load()
    if backend not in BACKENDS:
        raise ValueError(f"unknown EMG text backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    knowledge = load_knowledge()
    rules = "default" if backend == "medspacy-default" else "knowledge"
    return EmgTextAnalyzer(knowledge, MedspacyContextEngine(knowledge, rules=rules))


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
            for direction in DIRECTIONS:
                for pattern in (ctx.get(category) or {}).get(direction) or []:
                    rule_list.append(
                        ConTextRule(
                            pattern,
                            category.upper(),
                            pattern=f"(?i){bounded(pattern)}",
                            direction=direction.upper(),
                        )
                    )
        for pattern in ctx.get("pseudo") or []:
            rule_list.append(
                ConTextRule(pattern, "PSEUDO", pattern=f"(?i){bounded(pattern)}", direction="PSEUDO")
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
            if category not in PRIORITY:
                continue
            triggers.append(Trigger(category, direction, start, end, scope_start, scope_end, text[start:end]))
        terminators = [(m.start(), m.end()) for m in self._terminators.finditer(text) if m.end() > m.start()]
        return AnnotatedText(text, sentences, triggers, terminators)
