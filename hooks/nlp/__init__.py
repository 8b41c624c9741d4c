"""Clinical text understanding: the EMG impression reader and the ConText assertion engine behind it.

Import from the stable public modules, :mod:`hooks.nlp` (``EmgTextAnalyzer``) and
:mod:`hooks.nlp` (``ContextEngine``, ``affirmed_mentions``, ``html_to_text`` ...); this package holds
their implementation, one concern per module:

========================  ==============================================================================
``textprep``              HTML to text (keeping block structure), Unicode/whitespace normalisation
``assertion``             assertion categories, ``Assertion``/``Trigger``/``Mention``, ``AnnotatedText``
``context``               the ConText engine: trigger rules, sentence splitting, scopes; ``affirmed_mentions``
``emg_sections``          EMG report preparation and section scoping (IMPRESSION yes, INDICATION no)
``emg_roots``             root/level parsing ("L5", "L4-5", "L5 and S1", "fifth lumbar root")
``emg_mentions``          radiculopathy and other-diagnosis mentions with their assertions
``emg_axon_loss``         axon-loss markers, who owns them, and chronicity
``emg_laterality``        left / right / bilateral
``emg_analyzer``          ``EmgTextAnalyzer``: the pipeline tying the above together
``budget``                ``TextBudget``: the characters one hook call may read, across all its texts
========================  ==============================================================================

All wording (triggers, headers, root notation, markers) lives in ``hooks/knowledge/emg_text.yaml``. The
medspaCy comparison backend lives with its benchmark (``benchmarks/medspacy_context.py``), not here.
"""

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
from hooks.nlp.budget import TextBudget
from hooks.nlp.context import (
    DEFAULT_KNOWLEDGE_PATH,
    ContextEngine,
    affirmed_mentions,
    default_engine,
    load_knowledge,
)
from hooks.nlp.emg_analyzer import EmgTextAnalyzer, EmgTextFinding
from hooks.nlp.textprep import html_to_text, looks_like_html, normalize_text

__all__ = [
    "CATEGORIES",
    "DEFAULT_EXCLUDE",
    "DEFAULT_KNOWLEDGE_PATH",
    "FINDING_EXCLUDE",
    "AnnotatedText",
    "Assertion",
    "ContextEngine",
    "EmgTextAnalyzer",
    "EmgTextFinding",
    "Mention",
    "Span",
    "TextBudget",
    "Trigger",
    "affirmed_mentions",
    "default_engine",
    "html_to_text",
    "load_knowledge",
    "looks_like_html",
    "normalize_text",
]
