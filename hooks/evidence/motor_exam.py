"""The motor and neurological examination: is an L5 deficit severe or progressing *now*?

Why grades need care: notes compare ("was 2/5 at the first visit, now 4+/5"), tables put grades in cells
with no "/5", flowsheets store one row per muscle with a bare integer, and exams repeat over weeks. A grade
is current only when the note says so (or says nothing else), and the newest examination decides: an old
2/5 does not outlive a newer 5/5. The card quotes the sentence that proves the current state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hooks.common.fhir import codings, concept_text, condition_active, onset_date
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.model import Evidence, clip, unique
from hooks.evidence.narrative import Narrative, NarrativeReader

_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n")
# A grade alone in a table cell ("| 5 | 3"), or right after the movement ("dorsiflexion: 2", "DF 4+").
_CELL = re.compile(r"(?<=\|)\s*(?P<grade>[0-5])(?P<mod>[+-])?\s*(?=\||$)")
_LONE = re.compile(
    r"\s*(?:[:=]|strength|power|-)?\s*(?P<grade>[0-5])(?P<mod>[+-])?\s*(?:$|[,;.](?:\s|$)|\s+(?:on\s+the\s+)?(?:left|right|bilat\w*|l|r)\b)",
    re.I,
)


class NamedPattern(Strict):
    name: str
    pattern: Regex
    exclude: Regex | None = None  # a sentence that also says this is not a finding ("symmetric")


class MotorKnowledge(KnowledgeFile):
    l5_movements: Regex
    grade: Regex
    severe_grade_max: int
    past: Regex
    current: Regex
    foot_drop: Regex
    progressive: Regex
    neuro_findings: list[NamedPattern]
    upper_limb: Regex
    lower_limb: Regex
    finding_questions: Regex


@dataclass(frozen=True)
class Grade:
    value: float  # MRC grade; 4- is 3.5, 4+ is 4.5
    past: bool


@dataclass
class Exam:
    """The L5 grades one note or flowsheet documents, with the sentence that shows them."""

    ref: str
    when: date | None
    kind: str
    current: list[float] = field(default_factory=list)
    past: list[float] = field(default_factory=list)
    quote: str = ""
    worst_quote: str = ""

    @property
    def worst(self) -> float | None:
        return min(self.current) if self.current else None


@dataclass
class MotorFindings:
    severe: list[Evidence]  # severe or progressive L5 motor deficit, current
    new_deficits: list[Evidence]  # neurological findings in the deficit window (payer checklist)
    latest_exam: Evidence | None = None  # the newest graded exam, quoted


class MotorExamReader:
    def __init__(self, knowledge: MotorKnowledge, terms: Terminology, reader: NarrativeReader) -> None:
        self.k = knowledge
        self.terms = terms
        self.reader = reader
        self.movement = re.compile(knowledge.l5_movements, re.I)
        self.grade = re.compile(knowledge.grade, re.I)
        self.past = re.compile(knowledge.past, re.I)
        self.current = re.compile(knowledge.current, re.I)
        self.findings = [
            (f.name, f.pattern, re.compile(f.exclude, re.I) if f.exclude else None)
            for f in knowledge.neuro_findings
        ]
        self.finding_questions = re.compile(knowledge.finding_questions, re.I)
        self.upper = re.compile(knowledge.upper_limb, re.I)
        self.lower = re.compile(knowledge.lower_limb, re.I)

    def read(
        self, conditions: Iterable[Any], narratives: list[Narrative], now: date, window: int, zone: Any
    ) -> MotorFindings:
        recent = sorted(
            (n for n in narratives if n.when is not None and 0 <= (now - n.when).days <= window),
            key=lambda n: n.when,
        )
        exams = _by_day([e for n in recent if (e := self._exam(n)) is not None])
        latest = exams[-1] if exams else None
        severe: list[Evidence] = []
        if latest is not None and latest.worst is not None:
            worst = latest.worst
            earlier = [g for e in exams[:-1] for g in e.current] + latest.past
            progressing = bool(earlier) and worst < min(earlier)
            if worst <= self.k.severe_grade_max:
                what = "severe L5 weakness" + (", progressing" if progressing else "")
                severe.append(Evidence(latest.ref, latest.when, latest.worst_quote, latest.kind, what=what))
            elif progressing and worst < 5:
                severe.append(
                    Evidence(
                        latest.ref,
                        latest.when,
                        latest.worst_quote,
                        latest.kind,
                        what="progressive L5 weakness",
                    )
                )
        recovered_after = (
            latest.when
            if latest is not None
            and latest.worst is not None
            and latest.worst > self.k.severe_grade_max
            and not severe
            else None
        )
        for n in recent:
            if recovered_after is not None and n.when is not None and n.when < recovered_after:
                continue  # a newer examination shows the weakness has recovered
            for name, pattern in (
                ("foot drop", self.k.foot_drop),
                ("progressive weakness", self.k.progressive),
            ):
                hits = self.reader.mentions(n, pattern)
                if hits:
                    severe.append(Evidence(n.ref, n.when, clip(hits[0]), n.kind, what=name))
        for cond in conditions:
            onset = onset_date(cond, zone)
            if not condition_active(cond) or not self.terms.in_set("foot-drop", codings(cond.code)):
                continue
            if onset is not None and (now - onset).days > window:
                continue
            if recovered_after is not None and onset is not None and onset < recovered_after:
                continue
            code = next((c for _, c in codings(cond.code) if c), "")
            severe.append(
                Evidence(
                    f"Condition/{cond.id}", onset, concept_text(cond.code), "Problem list", code, "foot drop"
                )
            )
        latest_ev = (
            Evidence(latest.ref, latest.when, latest.quote, latest.kind, what="latest motor exam")
            if latest is not None
            else None
        )
        return MotorFindings(unique(severe), self._deficits(recent, severe), latest_ev)

    # -- one note's exam --------------------------------------------------------------------------------

    def _exam(self, n: Narrative) -> Exam | None:
        exam = Exam(n.ref, n.when, n.kind)
        for answer in n.answers:
            graded = answer.reply == "value" and answer.value is not None and 0 <= answer.value <= 5
            if graded and self.movement.search(answer.question):
                exam.current.append(answer.value)
                self._quote(exam, answer.value, answer.quote())
        for sentence in _SENTENCE.split(n.prose) if n.prose else []:
            if not self.movement.search(sentence):
                continue
            default_past = self._sentence_is_past(sentence)
            for grade in self._grades(sentence, default_past):
                (exam.past if grade.past else exam.current).append(grade.value)
                if not grade.past:
                    self._quote(exam, grade.value, sentence.strip())
        return exam if exam.current or exam.past else None

    def _quote(self, exam: Exam, value: float, quote: str) -> None:
        if not exam.quote:
            exam.quote = clip(quote)
        if exam.worst is None or value <= exam.worst or not exam.worst_quote:
            exam.worst_quote = clip(quote)

    def _sentence_is_past(self, sentence: str) -> bool:
        first = self.movement.search(sentence)
        lead = sentence[: first.start()] if first else ""
        return bool(self.past.search(lead)) and not self.current.search(lead)

    def _grades(self, sentence: str, default_past: bool) -> list[Grade]:
        """Grades of L5 movements in one sentence or table row, each current or past.

        "/5" grades count anywhere after the movement. A bare number counts only where the layout makes it
        a grade: right after the movement ("L ANKLE DORSIFLEXION: 2") or alone in table cells ("| 5 | 3");
        never in "Tibialis anterior: 2+ fibrillations" (an EMG finding, not strength).
        """
        moves = list(self.movement.finditer(sentence))
        out: list[Grade] = []
        for i, move in enumerate(moves):
            end = moves[i + 1].start() if i + 1 < len(moves) else len(sentence)
            segment = sentence[move.end() : end]
            found = list(self.grade.finditer(segment))
            if not found:
                found = self._bare(segment)
            if not found:  # "3-/5 left tibialis anterior": the grade is written before the muscle
                lead_start = moves[i - 1].end() if i else 0
                lead = sentence[max(lead_start, move.start() - 25) : move.start()]
                before = list(self.grade.finditer(lead))[-1:]
                out += [Grade(_value(m), default_past) for m in before]
                continue
            pos = 0
            for m in found:
                gap = segment[pos : m.start()]
                pos = m.end()
                out.append(Grade(_value(m), self._is_past(gap, default_past)))
        return out

    def _bare(self, segment: str) -> list[re.Match[str]]:
        cells = list(_CELL.finditer(segment))
        if cells and len(cells) <= 3:
            return cells
        lone = _LONE.match(segment)
        return [lone] if lone else []

    def _is_past(self, gap: str, default: bool) -> bool:
        """The marker nearest the grade decides ("at the first visit, now 4+/5" is current)."""
        last_past = max((m.end() for m in self.past.finditer(gap)), default=-1)
        last_now = max((m.end() for m in self.current.finditer(gap)), default=-1)
        if last_past < 0 and last_now < 0:
            return default
        return last_past > last_now

    # -- deficits for the payer checklist --------------------------------------------------------------

    def _deficits(self, recent: list[Narrative], severe: list[Evidence]) -> list[Evidence]:
        out = list(severe)
        for n in recent:
            for name, pattern, exclude in self.findings:
                hits = [
                    h
                    for h in self.reader.mentions(n, pattern)
                    if not (exclude and exclude.search(h))
                    and not (self.upper.search(h) and not self.lower.search(h))
                ]
                if hits:
                    out.append(Evidence(n.ref, n.when, clip(hits[0]), n.kind, what=name))
            for answer in n.answers:
                if answer.reply == "yes" and self.finding_questions.search(answer.question):
                    out.append(Evidence(n.ref, n.when, answer.quote(), n.kind, what="neurological finding"))
        return unique(out)


def _by_day(exams: list[Exam]) -> list[Exam]:
    """One examination per day: a flowsheet stores each muscle as its own row, a note may repeat the grid."""
    days: dict[date | None, Exam] = {}
    for e in exams:
        day = days.get(e.when)
        if day is None:
            days[e.when] = e
            continue
        worst_before = day.worst
        day.current += e.current
        day.past += e.past
        if e.worst is not None and (worst_before is None or e.worst < worst_before):
            day.worst_quote, day.ref, day.kind = e.worst_quote, e.ref, e.kind
        day.quote = day.quote or e.quote
    return list(days.values())


def _value(m: re.Match[str]) -> float:
    return int(m.group("grade")) + {"+": 0.5, "-": -0.5}.get(m.group("mod") or "", 0.0)
