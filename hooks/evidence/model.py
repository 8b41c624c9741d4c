"""Typed evidence: every fact a rule reads, with the document it came from, its date and the words.

A card cites its evidence by document kind and date ("EMG/NCS report, 14 Nov 2026"), never by resource
id; `ref` is kept for the audit and for reasonReference links in suggested orders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from hooks.common.schema import KnowledgeFile, Strict
from hooks.nlp import EmgTextFinding

if TYPE_CHECKING:  # the concept modules import this one; only the annotations need them
    from hooks.evidence.care_history import CareEvidence
    from hooks.evidence.diagnoses import DiagnosisEvidence
    from hooks.evidence.edx_reports import EdxEvidence
    from hooks.evidence.episode import Episode
    from hooks.evidence.imaging import ImagingEvidence
    from hooks.evidence.motor_exam import MotorFindings

SNIPPET = 300


def clip(text: str, limit: int = SNIPPET) -> str:
    """Whole sentences are quoted; only a runaway one is cut (at a word, with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "\u2026"


def day(when: date | None) -> str:
    """A date as clinicians read it: 14 Nov 2026."""
    return f"{when.day} {when:%b %Y}" if when else "undated"


def unique(items: Iterable[Evidence]) -> list[Evidence]:
    """One finding per document and kind ("saddle numbness" twice in one note is one finding)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in items:
        if (e.ref, e.what) not in seen:
            seen.add((e.ref, e.what))
            out.append(e)
    return out


def condition_label(categories: set[str]) -> str:
    """What a clinician calls where a Condition sits, from its category codes."""
    return "Encounter diagnosis" if "encounter-diagnosis" in categories else "Problem list"


_WRITTEN_DATE = re.compile(
    r"\b(?P<month>[A-Za-z]{3,9})\.?\s+(?P<mday>\d{1,2}),?\s+(?P<myear>(?:19|20)\d\d)\b"
    r"|\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})\b"
    r"|\b(?P<iy>(?:19|20)\d\d)-(?P<im>\d{2})-(?P<id>\d{2})\b"
    r"|\b(?P<year>(?:19|20)\d\d)\b"
)


def written_date(text: str) -> date | None:
    """The first date a text writes, as notes write them: "NOV 20, 2025", "11/20/2025", "11/20/25",
    "2025-11-20", or a year alone (taken as mid-year)."""
    for m in _WRITTEN_DATE.finditer(text):
        try:
            if m.group("month"):
                month = datetime.strptime(m.group("month")[:3].title(), "%b").month
                return date(int(m.group("myear")), month, int(m.group("mday")))
            if m.group("m"):
                year = int(m.group("y"))
                return date(year + 2000 if year < 100 else year, int(m.group("m")), int(m.group("d")))
            if m.group("iy"):
                return date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
            return date(int(m.group("year")), 7, 1)
        except ValueError:
            continue  # not a month name, or not a real day: look further
    return None


#: Resource types as a clinician names them (what a card says was not searched in full).
_WORDS = {
    "DiagnosticReport": "reports",
    "DocumentReference": "notes",
    "Procedure": "procedures",
    "ServiceRequest": "orders",
    "Encounter": "visits",
    "QuestionnaireResponse": "questionnaires",
    "Observation": "flowsheets",
    "Condition": "diagnoses",
}


@dataclass(frozen=True)
class Evidence:
    """One fact and where it was documented. Cards show `label` and `when`, never `ref`."""

    ref: str  # Type/id: for the audit trail and reasonReference links, never shown in card text
    when: date | None
    text: str  # the words that prove it (a whole sentence), or the coded entry's name
    label: str = ""  # the document as a clinician names it: "ED Provider Notes", "Problem list"
    code: str = ""  # the code that matched, as written in the resource (e.g. "M51.17")
    what: str = ""  # the finding, in words: "urinary retention"
    display: str = ""  # the matched code's display

    def source(self) -> str:
        """ "ED Provider Notes, 21 Jan 2026"."""
        return f"{self.label or 'Chart'}, {day(self.when)}"

    def coded(self) -> str:
        """ "M51.17 Intervertebral disc disorders with radiculopathy, lumbosacral region"."""
        return f"{self.code} {self.display or self.text}".strip() if self.code else self.text

    def cite(self, limit: int = 240) -> str:
        quote = f": \u201c{clip(self.text, limit)}\u201d" if self.text else ""
        return f"{self.source()}{quote}"


@dataclass(frozen=True)
class EmgFinding:
    evidence: Evidence
    finding: EmgTextFinding
    coded: bool  # selected by code/category rather than by text alone


@dataclass(frozen=True)
class EdxStudy:
    """Proof that an EMG/NCS study was done (whatever it found): for the payer's 12-month criterion."""

    evidence: Evidence
    needle: bool
    limb: str = "unknown"  # lower | upper | both | unknown


@dataclass(frozen=True)
class MriStudy:
    evidence: Evidence
    compressive: bool
    plexus: bool
    disc_levels: tuple[str, ...] = ()  # "lumbar" (L1-2..L4-5), "lumbosacral" (L5-S1), "unspecified"


class Windows(KnowledgeFile):
    """knowledge/windows.yaml: every window in days, in one place."""

    days: WindowDays


class WindowDays(Strict):
    emg_lookback: int
    imaging_lookback: int
    conservative_min: int
    conservative_max: int
    red_flag: int
    new_deficit: int
    pt_recent: int
    esi_recent: int
    referral_recent: int


Windows.model_rebuild()


@dataclass
class PatientEvidence:
    """Everything the rules know about the patient, computed once per hook call."""

    today: date
    windows: WindowDays
    edx: EdxEvidence
    imaging: ImagingEvidence
    diagnoses: DiagnosisEvidence
    care: CareEvidence
    motor: MotorFindings
    red_flags: list[Evidence]
    episode: Episode
    ordered: set[tuple[str, str]] = field(default_factory=set)  # (system key, code) of active/draft orders
    incomplete: tuple[str, ...] = ()  # resource types whose search was cut short: "none on file" is unsure
    unread: bool = False  # the call's reading limit stopped it reading every note and report

    def cut_short(self, *types: str) -> str:
        """What a card should admit it may have missed, in a clinician's words ("" when nothing)."""
        cut = [_WORDS.get(t, t) for t in (types or self.incomplete) if t in self.incomplete]
        if self.unread:
            cut.append("the text of every note and report (reading limit reached)")
        return ", ".join(dict.fromkeys(cut))

    # -- the shared answers (one chart, one answer) ---------------------------------------------------

    @property
    def emg(self) -> EmgFinding | None:
        """The newest relevant, readable EMG/NCS study within the lookback, when it proves L5 + axon loss."""
        return self.edx.positive(self.today, self.windows.emg_lookback)

    @property
    def days(self) -> int | None:
        """Symptom duration of the current episode."""
        return self.episode.days(self.today)

    @property
    def mri_since(self) -> date:
        """An MRI counts when it is dated on or after this day (the episode onset, within the lookback)."""
        floor = self.today - timedelta(days=self.windows.imaging_lookback)
        onset = self.episode.onset
        return max(onset, floor) if onset else floor

    def qualifying_mri(self) -> list[MriStudy]:
        return self.imaging.qualifying(self.mri_since)

    @property
    def persisting(self) -> bool:
        """Symptoms persist: an active radiculopathy/radicular diagnosis, or recent notes saying so."""
        return bool(self.diagnoses.symptom_conditions) or bool(
            self.within(self.diagnoses.radicular_symptoms, self.windows.red_flag)
        )

    def within_days(self, when: date | None, days: int) -> bool:
        return when is not None and 0 <= (self.today - when).days <= days

    def within(self, items: Iterable[Evidence], days: int) -> list[Evidence]:
        return [e for e in items if self.within_days(e.when, days)]
