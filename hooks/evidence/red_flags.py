"""Cauda equina red flags: coded diagnoses, note prose, flowsheet and questionnaire answers.

Both directions are dangerous. A missed retention written in ED shorthand ("bladder scan 740 mL, straight
cath") is a missed emergency; a false alarm from education text ("cauda equina precautions reviewed")
also silences every routine card. So a finding counts only when it is affirmed in prose, answered "yes"
on a form, or coded as new; what counts as each is in `knowledge/red_flags.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from hooks.common.fhir import codings, concept_text, condition_active, onset_date
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict, compile_any
from hooks.evidence.model import Evidence, clip, condition_label, unique
from hooks.evidence.narrative import Narrative, NarrativeReader


class Finding(Strict):
    name: str
    why: str
    text: list[Regex]
    question: Regex
    exclude: Regex | None = None


class Quantity(Strict):
    name: str
    why: str
    text: Regex  # with a named group `ml`
    question: Regex
    min_ml: int


class NewOnly(Strict):
    set: str
    topic: Regex


class SetWithText(Strict):
    set: str
    text: Regex


class ConditionRules(Strict):
    always: list[str]
    new_only: list[NewOnly]
    with_site: SetWithText
    with_progression: SetWithText
    long_standing: Regex
    benign: Regex


class RedFlagKnowledge(KnowledgeFile):
    findings: list[Finding]
    quantities: list[Quantity]
    conditions: ConditionRules


@dataclass(frozen=True)
class _Compiled:
    name: str
    text: re.Pattern[str] | None
    question: re.Pattern[str]
    exclude: re.Pattern[str] | None


class RedFlagReader:
    def __init__(self, knowledge: RedFlagKnowledge, terms: Terminology, reader: NarrativeReader) -> None:
        self.k = knowledge
        self.terms = terms
        self.reader = reader
        self.findings = [
            _Compiled(
                f.name,
                compile_any(f.text),
                re.compile(f.question, re.I),
                re.compile(f.exclude, re.I) if f.exclude else None,
            )
            for f in knowledge.findings
        ]
        self.quantities = [
            (q, re.compile(q.text, re.I), re.compile(q.question, re.I)) for q in knowledge.quantities
        ]
        rules = knowledge.conditions
        self.site = re.compile(rules.with_site.text, re.I)
        self.progression = re.compile(rules.with_progression.text, re.I)
        self.long_standing = re.compile(rules.long_standing, re.I)
        self.benign = re.compile(rules.benign, re.I)
        self.topics = [(n.set, re.compile(n.topic, re.I)) for n in rules.new_only]

    def read(
        self, conditions: Iterable[Any], narratives: list[Narrative], now: date, window: int, zone: Any
    ) -> list[Evidence]:
        recent = [n for n in narratives if n.when is not None and 0 <= (now - n.when).days <= window]
        found = self._from_narratives(recent)
        found += self._from_conditions(conditions, narratives, now, window, zone)
        return unique(found)

    # -- notes, flowsheets, questionnaires ------------------------------------------------------------

    def _from_narratives(self, narratives: list[Narrative]) -> list[Evidence]:
        out: list[Evidence] = []
        for n in narratives:
            for f in self.findings:
                hits = self.reader.mentions(n, f.text) if f.text else ()
                hits = tuple(h for h in hits if not (f.exclude and f.exclude.search(h)))
                answers = [a.quote() for a in self.reader.answered(n, f.question) if a.reply == "yes"]
                for quote in [*hits[:1], *answers[:1]][:1]:
                    out.append(Evidence(n.ref, n.when, clip(quote), n.kind, what=f.name))
            for q, text, question in self.quantities:
                for sentence in self.reader.mentions(n, text):
                    # "1,100 mL": a thousands separator is part of the volume, never where it starts
                    volumes = [int(m.group("ml").replace(",", "")) for m in text.finditer(sentence)]
                    if volumes and max(volumes) >= q.min_ml:
                        out.append(Evidence(n.ref, n.when, clip(sentence), n.kind, what=q.name))
                        break
                for answer in self.reader.answered(n, question):
                    if answer.value is not None and answer.value >= q.min_ml and _is_volume(answer.unit):
                        out.append(Evidence(n.ref, n.when, answer.quote(), n.kind, what=q.name))
                        break
        return out

    # -- coded diagnoses ----------------------------------------------------------------------------------

    def _from_conditions(
        self, conditions: Iterable[Any], narratives: list[Narrative], now: date, window: int, zone: Any
    ) -> list[Evidence]:
        out: list[Evidence] = []
        rules = self.k.conditions
        for cond in conditions:
            if not condition_active(cond):
                continue
            pairs = codings(cond.code)
            onset = onset_date(cond, zone)
            recent = onset is None or 0 <= (now - onset).days <= window
            words = " ".join([concept_text(cond.code), *(n.text or "" for n in cond.note or [])])
            if not recent:
                continue
            what = None
            if any(self.terms.in_set(s, pairs) for s in rules.always):
                what = "cauda equina syndrome"
            elif (topic := self._new_only_topic(pairs)) is not None:
                if onset is not None and not self._long_standing(words, topic, narratives):
                    what = "new bladder or bowel dysfunction"
            elif self.terms.in_set(rules.with_site.set, pairs) and self.site.search(words):
                what = "saddle or perineal sensory loss"
            elif self.terms.in_set(rules.with_progression.set, pairs) and self.progression.search(words):
                what = "progressive weakness"
            if what:
                code = next((c for _, c in pairs if c), "")
                display = concept_text(cond.code)
                out.append(
                    Evidence(
                        f"Condition/{cond.id}",
                        onset,
                        display,
                        condition_label({c for _, c in codings(cond.category or [])}),
                        code,
                        what,
                    )
                )
        return out

    def _new_only_topic(self, pairs: list[tuple[str | None, str | None]]) -> re.Pattern[str] | None:
        return next((topic for name, topic in self.topics if self.terms.in_set(name, pairs)), None)

    def _long_standing(self, words: str, topic: re.Pattern[str], narratives: list[Narrative]) -> bool:
        """Documented as long-standing: in the entry itself, or in any note that describes the same topic."""
        if self.long_standing.search(words) or self.benign.search(words):
            return True
        for n in narratives:
            if not topic.search(n.prose):
                continue
            for sentence in _sentences_with(n.prose, topic):
                if self.long_standing.search(sentence) or self.benign.search(sentence):
                    return True
        return False


def _sentences_with(text: str, topic: re.Pattern[str]) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n", text) if topic.search(s)]


def _is_volume(unit: str) -> bool:
    return not unit or unit.strip().lower() in {"ml", "cc", "milliliter", "milliliters", "millilitre"}
