"""Typed evidence: every fact a rule reads, with the document it came from, its date and the words.

A card cites its evidence by document kind and date ("EMG/NCS report, 14 Nov 2026"), never by resource
id; `ref` is kept for the audit and for reasonReference links in suggested orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hooks.nlp import EmgTextFinding

SNIPPET = 300


def clip(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def newest_first(items: list[Any], key) -> list[Any]:
    return sorted(items, key=lambda x: key(x) or date.min, reverse=True)


@dataclass(frozen=True)
class Evidence:
    ref: str
    when: date | None
    text: str
    label: str = ""
    code: str = ""  # the code that matched, as written in the resource (e.g. "M51.17")

    def cite(self, limit: int = 160) -> str:
        when = self.when.isoformat() if self.when else "undated"
        quote = f': "{clip(self.text, limit)}"' if self.text else ""
        return f"{self.label + ' — ' if self.label else ''}{self.ref} ({when}){quote}"


@dataclass(frozen=True)
class Narrative:
    """Free text of the chart (a note, an exam or flowsheet row) to be read for findings."""

    ref: str
    when: date | None
    text: str
    label: str


@dataclass(frozen=True)
class EmgFinding:
    evidence: Evidence
    finding: EmgTextFinding
    coded: bool  # selected by code/category rather than by text alone


@dataclass(frozen=True)
class EdxStudy:
    evidence: Evidence
    needle: bool


@dataclass(frozen=True)
class MriStudy:
    evidence: Evidence
    compressive: bool
    plexus: bool


@dataclass
class PatientEvidence:
    now: date
    emg: list[EmgFinding] = field(default_factory=list)  # readable EMG/NCS interpretations, newest first
    edx_studies: list[EdxStudy] = field(default_factory=list)  # any proof an EDX study was done
    mri: list[MriStudy] = field(default_factory=list)  # newest first
    radic_conditions: list[Evidence] = field(default_factory=list)  # active radiculopathy diagnoses
    symptom_conditions: list[Evidence] = field(default_factory=list)  # active radiculopathy/radicular dx
    radicular_symptoms: list[Evidence] = field(default_factory=list)
    pt: list[Evidence] = field(default_factory=list)
    esi: list[Evidence] = field(default_factory=list)
    spine_referral: list[Evidence] = field(default_factory=list)
    prior_surgery: list[Evidence] = field(default_factory=list)
    tumor_or_infection: list[Evidence] = field(default_factory=list)  # contrast MRI (ACR LBP variant 7)
    red_flags: list[Evidence] = field(default_factory=list)
    motor_deficit: list[Evidence] = field(default_factory=list)
    new_deficits: list[Evidence] = field(default_factory=list)
    ordered: list[tuple[str, str]] = field(default_factory=list)  # (system key, code) of active/draft orders

    def days_since(self, when: date | None) -> int | None:
        return None if when is None else (self.now - when).days

    def within(self, items: Iterable[Evidence], days: int) -> list[Evidence]:
        return [e for e in items if e.when is not None and 0 <= (self.now - e.when).days <= days]
