"""The model of `knowledge/emg_text.yaml`: checked at start-up so a site's typo stops the service with the
file and key named, instead of surfacing as a KeyError inside a hook call."""

from __future__ import annotations

from hooks.common.schema import KnowledgeFile, Regex, Strict


class Limits(Strict):
    max_chars: int
    max_html_chars: int
    max_chars_per_call: int = 200_000  # one hook call's text budget (hooks.nlp.budget.TextBudget)
    root_before_term_chars: int
    root_after_term_chars: int
    alternative_gap_max_chars: int = 80


class NamedPattern(Strict):
    name: str
    pattern: Regex


class Sections(Strict):
    include: list[NamedPattern]
    exclude: list[NamedPattern]
    data: list[NamedPattern]
    other: list[NamedPattern]
    generic_header: Regex
    generic_header_max_words: int


class Sentences(Strict):
    abbreviations: list[str]
    wrapped_line_min_chars: int
    bullet: Regex


class Directions(Strict):
    forward: list[Regex] = []
    backward: list[Regex] = []
    bidirectional: list[Regex] = []


class Context(Strict):
    negated: Directions
    uncertain: Directions
    historical: Directions
    hypothetical: Directions
    family: Directions
    not_new: Directions
    pseudo: list[Regex]
    terminators: list[Regex]


class Roots(Strict):
    atom: Regex
    words: dict[str, str]
    range_tail: Regex
    joiner: Regex
    target: str
    disc_context: Regex
    root_noun: Regex
    root_pathology: Regex
    order: list[str]


class Radiculopathy(Strict):
    term: Regex
    alternative_gap: Regex
    between_before: Regex


class Marker(Strict):
    chronicity: str
    pattern: Regex


class AxonLoss(Strict):
    markers: list[Marker]
    chronicity_words: dict[str, Regex]


class Diagnoses(Strict):
    mimics: list[NamedPattern]
    other: Regex


class Laterality(Strict):
    bilateral: Regex
    left: Regex
    right: Regex
    abbreviation_context: Regex


class Muscles(Strict):
    l5_myotome: Regex
    other: Regex


class EmgTextKnowledge(KnowledgeFile):
    limits: Limits
    sections: Sections
    sentences: Sentences
    context: Context
    roots: Roots
    radiculopathy: Radiculopathy
    axon_loss: AxonLoss
    diagnoses: Diagnoses
    laterality: Laterality
    muscles: Muscles
