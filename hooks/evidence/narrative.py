"""Reading the chart's free text and forms: notes, flowsheet rows and questionnaires become statements.

Why one reader for every concept: red flags, motor grades, radicular symptoms and symptom onset are all
written the same few ways, and every way has the same traps:
- prose in notes, where a mention may be negated ("denies saddle numbness"), hypothetical ("return if you
  lose bladder control"), education ("cauda equina precautions reviewed"), a risk list ("risks include
  bleeding, infection, incontinence") or a blank template ("SADDLE ANESTHESIA: ___");
- question-and-answer rows (flowsheets, triage forms, questionnaires, "Urinary retention: Yes" lines),
  where the question names the finding and only the answer says whether it is present. A blank or
  unanswered box is not a finding.

The reader turns each source into a `Narrative`: its prose (with instruction/education sections removed)
and its `Answer`s. Concept extractors then ask it for affirmed mentions of their patterns, or for answers
to their questions. All wording is in `knowledge/narrative.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from hooks.common.fhir import (
    as_date,
    attachment_text,
    codings,
    concept_name,
    concept_text,
    document_date,
    resource_date,
)
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.model import written_date
from hooks.nlp import DEFAULT_EXCLUDE, ContextEngine, html_to_text, looks_like_html, normalize_text

Reply = Literal["yes", "no", "value"]


class CodedAnswer(Strict):
    system: str  # a system key of valuesets.yaml
    code: str


class Answers(Strict):
    present: Regex  # an answer text meaning "yes, present"
    absent: Regex  # an answer text meaning "no, absent"
    blank: Regex  # an unanswered box: never a finding
    yes_codes: list[CodedAnswer]
    no_codes: list[CodedAnswer]


class ContextRules(Strict):
    forward: list[Regex] = []
    backward: list[Regex] = []


class CopiedText(Strict):
    start: Regex  # group "date": the date of the note the text was copied from
    end: Regex


class NarrativeKnowledge(KnowledgeFile):
    max_chars: int  # text read per note, after markup is stripped
    copied_text: CopiedText
    skip_sections: Regex  # headers whose content documents no finding (instructions, education, risks)
    skip_sentences: Regex  # sentences that document no finding wherever they stand
    answer_line: Regex  # "Question: answer" on one line (groups q and a)
    unchecked_box: Regex  # "[ ] urinary retention": an unchecked template item
    long_answer_chars: int  # a valueString longer than this is prose, not an answer
    answers: Answers
    context: dict[str, ContextRules]  # ConText triggers for notes, added to those of emg_text.yaml


@dataclass(frozen=True)
class Answer:
    """One answered question of a form or flowsheet."""

    question: str
    reply: Reply
    value: float | None = None
    unit: str = ""
    text: str = ""  # the answer as written
    when: date | None = None  # a date answer ("When did the pain start?")

    def quote(self) -> str:
        shown = self.text or (f"{self.value:g} {self.unit}".strip() if self.value is not None else self.reply)
        return f"{self.question}: {shown}"


@dataclass(frozen=True)
class Narrative:
    """A dated piece of the chart's text: a note, a flowsheet row, a questionnaire."""

    ref: str
    when: date | None
    kind: str  # what a clinician calls it: "ED Provider Notes", "Flowsheet", "Triage questionnaire"
    prose: str = ""
    answers: tuple[Answer, ...] = ()
    sources: tuple[str, ...] = field(default=())  # resource references merged into this narrative
    copied: tuple[Narrative, ...] = ()  # text copied forward from older notes, each dated as its source


_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _coded(terms: Terminology, items: list[CodedAnswer]) -> frozenset[tuple[str, str]]:
    out = set()
    for item in items:
        key = terms.key(terms.uri.get(item.system, item.system), item.code)
        if key:
            out.add(key)
    return frozenset(out)


class NarrativeReader:
    """Compiled note-reading knowledge plus the ConText engine for clinical notes. Built once."""

    def __init__(self, knowledge: NarrativeKnowledge, emg_text: dict[str, Any], terms: Terminology) -> None:
        self.k = knowledge
        self.terms = terms
        merged = {**emg_text, "context": _merged_context(emg_text["context"], knowledge.context)}
        self.engine = ContextEngine(merged)
        # Every concept asks about the same note: annotate it (sentences, trigger scopes) once,
        # not once per pattern.
        self.engine.annotate = lru_cache(maxsize=2048)(self.engine.annotate)  # type: ignore[method-assign]
        flags = re.IGNORECASE | re.MULTILINE
        self._skip_header = re.compile(
            rf"(?:^|(?<=[.!?])\s)[ \t]*(?:{knowledge.skip_sections})[^:\n]{{0,40}}:", flags
        )
        self._any_header = re.compile(r"(?:^|(?<=[.!?])\s)[ \t]*[A-Z][A-Za-z/&() -]{2,40}:", re.MULTILINE)
        self._skip_sentence = re.compile(knowledge.skip_sentences, re.IGNORECASE)
        self._skip_document = re.compile(
            rf"\b(?:{knowledge.skip_sections})\b|\bafter[- ]visit\s+summary\b|\bAVS\b", re.IGNORECASE
        )
        self._answer_line = re.compile(knowledge.answer_line, flags)
        self._unchecked = re.compile(knowledge.unchecked_box)
        self._yes = re.compile(rf"^\s*(?:{knowledge.answers.present})\s*[.!]?\s*$", re.IGNORECASE)
        self._no = re.compile(rf"^\s*(?:{knowledge.answers.absent})\s*[.!]?\s*$", re.IGNORECASE)
        self._blank = re.compile(rf"^\s*(?:{knowledge.answers.blank})?\s*[.!]?\s*$", re.IGNORECASE)
        self._yes_codes = _coded(terms, knowledge.answers.yes_codes)
        self._no_codes = _coded(terms, knowledge.answers.no_codes)
        self.affirmed = lru_cache(maxsize=16384)(self._affirmed)
        self._copied_start = re.compile(knowledge.copied_text.start, re.IGNORECASE)
        self._copied_end = re.compile(knowledge.copied_text.end, re.IGNORECASE)

    # -- building narratives -------------------------------------------------------------------------

    def document(
        self, doc: Any, zone: Any = None, take: Callable[[str], str] | None = None
    ) -> Narrative | None:
        """A note as prose and answers. `take` charges the call's text budget (Chart.take)."""
        take = take or (lambda text: text)
        texts = []
        for content in doc.content or []:
            decoded = attachment_text(content.attachment, self.k.max_chars)
            if decoded:
                texts.append(take(self.plain(*decoded)))
        if doc.description:
            texts.append(take(doc.description))
        text = "\n\n".join(t for t in texts if t)
        if not text:
            return None
        kind = concept_name(doc.type) or concept_name(doc.category[0] if doc.category else None) or "Note"
        title = " ".join([kind, doc.description or ""])
        if self._skip_document.search(title):
            return None  # patient instructions, education, an after-visit summary: what to watch for
        ref = _ref(doc)
        text, blocks = self._split_copied(text)
        copied = tuple(self.from_text(ref, when, kind, block) for when, block in blocks if when is not None)
        return replace(self.from_text(ref, document_date(doc, zone), kind, text), copied=copied)

    def _split_copied(self, text: str) -> tuple[str, list[tuple[date | None, str]]]:
        """Cut text copied from older notes out of a note, with the date each copy came from."""
        blocks: list[tuple[date | None, str]] = []
        kept: list[str] = []
        at = 0
        while (start := self._copied_start.search(text, at)) is not None:
            # The copy's own end marker; without one, the paragraph (a blank line) ends it.
            end = self._copied_end.search(text, start.end()) or _BLANK_LINE.search(text, start.end())
            stop = end.start() if end else len(text)
            kept.append(text[at : start.start()])
            written = start.group("date")
            blocks.append((written_date(written) if written else None, text[start.end() : stop]))
            at = end.end() if end else len(text)
        kept.append(text[at:])
        return ("\n".join(kept), blocks) if blocks else (text, [])

    def plain(self, text: str, content_type: str = "text/plain") -> str:
        """Visible text with its line structure (HTML stripped first, then capped)."""
        if looks_like_html(text, content_type):
            text = html_to_text(text)
        return normalize_text(text)[: self.k.max_chars]

    def from_text(self, ref: str, when: date | None, kind: str, text: str) -> Narrative:
        prose = self._unchecked.sub(" ", self._without_skipped_sections(text))
        answers: list[Answer] = []

        def take(match: re.Match[str]) -> str:
            # Two shapes: "Question: answer" on its own line, or "Question? yes" inside a sentence.
            question = match.group("q") if match.group("q") is not None else match.group("q2")
            answer = self._reply(question or "", match.group("a") or match.group("a2") or "")
            if answer is None:
                return match.group(0)  # not a yes/no/blank answer: leave the line to the prose reader
            if answer.reply != "value":
                answers.append(answer)
            return ""  # read as an answer (or an unanswered box), never again as prose

        prose = self._answer_line.sub(take, prose)
        return Narrative(ref, when, kind, prose, tuple(answers), (ref,))

    def observation(self, obs: Any, zone: Any = None) -> Narrative | None:
        """A flowsheet or exam row: its code is the question, value[x] (any type) the answer."""
        question = concept_name(obs.code) or concept_text(obs.code)
        kind = _observation_kind(obs)
        answers: list[Answer] = []
        prose: list[str] = []
        self._value(question, obs, answers, prose)
        for comp in obs.component or []:
            self._value(concept_name(comp.code) or question, comp, answers, prose)
        prose += [n.text for n in obs.note or [] if n.text]
        if not answers and not prose:
            return None
        return Narrative(
            _ref(obs), resource_date(obs, zone), kind, "\n".join(prose), tuple(answers), (_ref(obs),)
        )

    def questionnaire(self, qr: Any, zone: Any = None) -> Narrative | None:
        answers: list[Answer] = []
        prose: list[str] = []

        def walk(items: Iterable[Any]) -> None:
            for item in items or []:
                question = item.text or item.linkId or ""
                for ans in item.answer or []:
                    self._value(question, ans, answers, prose)
                    walk(ans.item)
                walk(item.item)

        walk(qr.item)
        if not answers and not prose:
            return None
        when = resource_date(qr, zone)
        return Narrative(_ref(qr), when, "Questionnaire", "\n".join(prose), tuple(answers), (_ref(qr),))

    def _value(self, question: str, holder: Any, answers: list[Answer], prose: list[str]) -> None:
        """Read value[x] of an Observation, a component or a questionnaire answer."""
        get = lambda name: getattr(holder, name, None)  # noqa: E731 (components lack some value types)
        if get("dataAbsentReason") is not None:
            return  # an unanswered box
        for name in ("valueDate", "valueDateTime"):
            if (stamp := get(name)) is not None:
                when = as_date(stamp)
                if when is not None:
                    answers.append(Answer(question, "value", text=str(stamp)[:10], when=when))
                return
        if (boolean := get("valueBoolean")) is not None:
            answers.append(Answer(question, "yes" if boolean else "no", text="Yes" if boolean else "No"))
            return
        for name in ("valueInteger", "valueDecimal"):
            if (number := get(name)) is not None:
                answers.append(Answer(question, "value", float(number), text=str(number)))
                return
        if (quantity := get("valueQuantity")) is not None and quantity.value is not None:
            unit = quantity.unit or quantity.code or ""
            text = f"{quantity.value:g} {unit}".strip() if isinstance(quantity.value, float) else None
            answers.append(
                Answer(question, "value", float(quantity.value), unit, text or f"{quantity.value} {unit}")
            )
            return
        coded = get("valueCodeableConcept")
        coding = get("valueCoding")
        if coded is not None or coding is not None:
            pairs = codings(coded) if coded is not None else [(coding.system, coding.code)]
            words = (
                (concept_name(coded) or concept_text(coded))
                if coded is not None
                else (coding.display or coding.code or "")
            )
            keys = {k for s, c in pairs if (k := self.terms.key(s, c))}
            if keys & self._yes_codes:
                answers.append(Answer(question, "yes", text=words or "Yes"))
            elif keys & self._no_codes:
                answers.append(Answer(question, "no", text=words or "No"))
            elif words:
                self._words(question, words, answers, prose)
            return
        text = get("valueString")
        if text and text.strip():
            self._words(question, text, answers, prose)

    def _words(self, question: str, text: str, answers: list[Answer], prose: list[str]) -> None:
        answer = self._reply(question, text)
        if answer is not None and answer.reply != "value":
            answers.append(answer)
        elif answer is None:
            # A free-text answer ("decreased", "PVR 650 mL", "numb around the anus"): read it as a sentence
            # that starts with its question, so "Rectal tone: decreased" reads as one statement.
            # Each answer is its own sentence, so a finding's sentence never runs into the next row's.
            stripped = text.strip()
            end = "" if stripped[-1:] in ".;!?" else "."
            prose.append(
                f"{question}: {stripped}{end}" if question and len(text) <= self.k.long_answer_chars else text
            )

    def _reply(self, question: str, text: str) -> Answer | None:
        """A yes/no/blank answer to `question`; None when `text` is something else (a description)."""
        stripped = text.strip()
        if self._yes.match(stripped):
            return Answer(question.strip(), "yes", text=stripped)
        if self._no.match(stripped):
            return Answer(question.strip(), "no", text=stripped)
        if self._blank.match(stripped):
            return Answer(question.strip(), "value", text="")  # unanswered: consumed, never a finding
        return None

    def _without_skipped_sections(self, text: str) -> str:
        """Drop sections that document no finding (instructions, education, risks), header to next header."""
        cuts = []
        for m in self._skip_header.finditer(text):
            nxt = self._any_header.search(text, m.end())
            end = nxt.start() if nxt else len(text)
            blank = text.find("\n\n", m.end())
            if 0 <= blank < end:
                end = blank
            cuts.append((m.start(), end))
        if not cuts:
            return text
        out, pos = [], 0
        for start, end in cuts:
            if start >= pos:
                out.append(text[pos:start])
                pos = end
        out.append(text[pos:])
        return "\n".join(out)

    # -- reading ------------------------------------------------------------------------------------------

    def _affirmed(
        self, prose: str, pattern: str, exclude: frozenset[str] = DEFAULT_EXCLUDE
    ) -> tuple[str, ...]:
        """Sentences of `prose` with an affirmed mention of `pattern` (cached: notes repeat across calls)."""
        if not prose or not re.search(pattern, prose, re.IGNORECASE):
            return ()
        out: dict[str, None] = {}
        for mention in self.engine.mentions(prose, pattern, normalized=True):
            if mention.assertion.affirmed(exclude) and not self._skip_sentence.search(mention.sentence):
                out.setdefault(mention.sentence.strip(), None)
        return tuple(out)

    def mentions(
        self, narrative: Narrative, pattern: re.Pattern[str] | str, exclude: frozenset[str] = DEFAULT_EXCLUDE
    ) -> tuple[str, ...]:
        text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        return self.affirmed(narrative.prose, text, exclude)

    @staticmethod
    def answered(narrative: Narrative, question: re.Pattern[str]) -> list[Answer]:
        return [a for a in narrative.answers if question.search(a.question)]


def _merged_context(base: dict[str, Any], extra: dict[str, ContextRules]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for category, rules in extra.items():
        target = merged.setdefault(category, {})
        for direction in ("forward", "backward"):
            target[direction] = [*(target.get(direction) or []), *getattr(rules, direction)]
    return merged


def _ref(res: Any) -> str:
    return f"{res.get_resource_type()}/{res.id}" if getattr(res, "id", None) else res.get_resource_type()


def _observation_kind(obs: Any) -> str:
    categories = {c for _, c in codings(obs.category or [])}
    if "survey" in categories:
        return "Questionnaire"
    if "exam" in categories:
        return "Exam"
    return "Flowsheet"
