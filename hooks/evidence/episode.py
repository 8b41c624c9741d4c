"""The current episode: when did this radiculopathy start, and which document says so?

Why episodes: problem lists keep old entries active for years. The brief's onset is the earliest of the
condition onsets, the onset stated in notes and the EMG date, which would make a 3-week radiculopathy
5 years old when an old sciatica entry is still on the list. Evidence of the problem is therefore grouped
into episodes: a symptom-free gap longer than `gap_days` starts a new one, and the onset is the start of
the episode that holds the newest evidence. The card names the date used and where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from hooks.common.schema import KnowledgeFile, Regex
from hooks.evidence.model import Evidence, clip, day
from hooks.evidence.narrative import Narrative

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "few": 3,
    "several": 3,
}
_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n")


class EpisodeKnowledge(KnowledgeFile):
    gap_days: int
    continued_gap_days: int
    continuity: Regex
    radicular_words: Regex
    side_left: Regex
    side_right: Regex
    symptom_words: Regex
    since_date: Regex
    onset_question: Regex
    duration: Regex
    not_onset: Regex


@dataclass(frozen=True)
class Span:
    """Evidence of the problem over [start, end]: a diagnosis or an EMG is one day; "pain since January",
    written on 3 March, covers January to 3 March."""

    evidence: Evidence
    end_date: date | None = None

    @property
    def start(self) -> date | None:
        return self.evidence.when

    @property
    def end(self) -> date:
        return self.end_date or self.evidence.when or date.min


@dataclass(frozen=True)
class Episode:
    onset: date | None
    source: Evidence | None  # what dated the onset (a diagnosis, a note's words, the EMG)

    def days(self, today: date) -> int | None:
        return None if self.onset is None else (today - self.onset).days


class EpisodeReader:
    def __init__(self, knowledge: EpisodeKnowledge) -> None:
        self.k = knowledge
        self.symptoms = re.compile(knowledge.symptom_words, re.I)
        self.since = re.compile(knowledge.since_date, re.I)
        self.duration = re.compile(knowledge.duration, re.I)
        self.not_onset = re.compile(knowledge.not_onset, re.I)
        self.question = re.compile(knowledge.onset_question, re.I)
        self.continuity = re.compile(knowledge.continuity, re.I)
        self.radicular = re.compile(knowledge.radicular_words, re.I)
        self.left = re.compile(knowledge.side_left, re.I)
        self.right = re.compile(knowledge.side_right, re.I)

    def same_side(self, items: list[Span], side: str | None) -> list[Span]:
        """Drop evidence that names only the other side of a one-sided radiculopathy."""
        if side not in ("left", "right"):
            return items
        mine, other = (self.left, self.right) if side == "left" else (self.right, self.left)
        return [s for s in items if not (other.search(s.evidence.text) and not mine.search(s.evidence.text))]

    def stated_onsets(self, narratives: list[Narrative]) -> list[Span]:
        """Onsets written in notes ("since January 2", "x 3 weeks") or answered on forms ("When did the pain
        start?"), dated against the note's own date. Each is a span: the note says the problem lasted from
        the onset to the day it was written."""
        out = []
        for n in narratives:
            if n.when is None:
                continue
            for answer in n.answers:
                if (
                    answer.when is not None
                    and answer.when <= n.when
                    and self.question.search(answer.question)
                ):
                    label = f"{n.kind} of {day(n.when)}"
                    out.append(
                        Span(Evidence(n.ref, answer.when, answer.quote(), label, what="stated onset"), n.when)
                    )
                    break
            for sentence in _SENTENCE.split(n.prose or ""):
                if not self.symptoms.search(sentence):
                    continue
                onset = self._onset(sentence, n.when)
                if onset is not None and onset <= n.when:
                    label = f"{n.kind} of {day(n.when)}"
                    out.append(
                        Span(Evidence(n.ref, onset, clip(sentence), label, what="stated onset"), n.when)
                    )
                    break
        return out

    def continued(
        self,
        narratives: list[Narrative],
        since: date,
        affirmed: Callable[[Narrative, str], tuple[str, ...]],
    ) -> Evidence | None:
        """A note since `since` that calls the radicular problem persistent or chronic. `affirmed` gives the
        sentences where a pattern is affirmed (the narrative reader's ConText): "no residual numbness" or
        "denies ongoing leg pain" says the opposite."""
        for n in narratives:
            if n.when is None or n.when < since:
                continue
            for sentence in affirmed(n, self.k.continuity):
                if self.radicular.search(sentence):
                    return Evidence(n.ref, n.when, clip(sentence), n.kind, what="persisting symptoms")
        return None

    def episode(self, items: list[Span], today: date, continued: bool = False) -> Episode:
        """The episode holding the newest evidence: earlier evidence joins while the symptom-free gap before
        the episode stays within `gap_days` (`continued_gap_days` when a recent note says the problem
        persists); the onset is the earliest start that joined."""
        gap_days = self.k.continued_gap_days if continued else self.k.gap_days
        dated = [s for s in items if s.start is not None and s.start <= today]
        if not dated:
            return Episode(None, None)
        dated.sort(key=lambda s: (s.end, s.start), reverse=True)
        first = dated[0]
        start = first.start
        for span in dated[1:]:
            if (start - span.end).days > gap_days:
                break
            if span.start < start or (span.start == start and first.evidence.what != "stated onset"):
                start, first = span.start, span
        return Episode(start, first.evidence)

    def _onset(self, sentence: str, noted: date) -> date | None:
        found: list[date] = []
        for m in self.since.finditer(sentence):
            when = _since(m, noted)
            if when is not None:
                found.append(when)
        if not found and not self.not_onset.search(sentence):
            for m in self.duration.finditer(sentence):
                n = m.group("n") or m.group("n2")
                unit = (m.group("unit") or m.group("unit2") or "").lower()
                count = int(n) if n.isdigit() else _WORDS.get(n.lower())
                if count is None:
                    continue
                days = count * (30 if unit.startswith("mo") else 7 if unit.startswith("w") else 1)
                found.append(noted - timedelta(days=days))
        return min(found) if found else None


def _since(m: re.Match[str], noted: date) -> date | None:
    if m.group("my"):
        month, year = (int(p) for p in m.group("my").split("/"))
        day = 15
        if not 1 <= month <= 12:
            return None
        return date(year, month, day)
    if m.group("mdy"):
        parts = [int(p) for p in m.group("mdy").split("/")]
        month, day = parts[0], parts[1]
        year = parts[2] if len(parts) > 2 else None
        if year is not None and year < 100:
            year += 2000
    else:
        month = _MONTHS[m.group("month")[:3].lower()]
        day = (
            int(m.group("day"))
            if m.group("day")
            else {"early": 5, "mid": 15, "late": 25}.get(
                (m.group("part") or "").lower(), 15 if not m.group("day") else 1
            )
        )
        year = int(m.group("year")) if m.group("year") else None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year is None:  # the latest such date on or before the note
        year = noted.year if (month, day) <= (noted.month, noted.day) else noted.year - 1
    try:
        return date(year, month, day)
    except ValueError:
        return None
