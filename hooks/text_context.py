"""ConText-style assertion engine: is a mention in clinical text affirmed, negated, uncertain, historical...?

This module is the stable import path for the engine and the text helpers around it; the implementation is
split across :mod:`hooks.nlp` (see its docstring for the map):

* :mod:`hooks.nlp.context`: :class:`ContextEngine`, :func:`affirmed_mentions`, the knowledge file loader;
* :mod:`hooks.nlp.assertion`: assertion categories and the per-text scope index (:class:`AnnotatedText`);
* :mod:`hooks.nlp.textprep`: :func:`html_to_text`, :func:`normalize_text`, :func:`looks_like_html`;
* :mod:`hooks.nlp.medspacy_context`: the optional medspaCy backend (imports medspaCy only when built).

Nothing is built at import; :func:`affirmed_mentions` builds the shared engine on first use.
"""

from __future__ import annotations

from hooks.nlp.assertion import (
    CATEGORIES,
    DEFAULT_EXCLUDE,
    FINDING_EXCLUDE,
    AnnotatedText,
    Assertion,
    Mention,
    Span,
    Trigger,
)
from hooks.nlp.context import (
    DEFAULT_KNOWLEDGE_PATH,
    ContextEngine,
    affirmed_mentions,
    default_engine,
    load_knowledge,
)
from hooks.nlp.medspacy_context import MedspacyContextEngine
from hooks.nlp.textprep import html_to_text, looks_like_html, normalize_text

__all__ = [
    "CATEGORIES",
    "DEFAULT_EXCLUDE",
    "DEFAULT_KNOWLEDGE_PATH",
    "FINDING_EXCLUDE",
    "AnnotatedText",
    "Assertion",
    "ContextEngine",
    "MedspacyContextEngine",
    "Mention",
    "Span",
    "Trigger",
    "affirmed_mentions",
    "default_engine",
    "html_to_text",
    "load_knowledge",
    "looks_like_html",
    "normalize_text",
]
