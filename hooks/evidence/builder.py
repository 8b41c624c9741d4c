"""Typed patient evidence: what the chart says, extracted once per hook call, with its provenance.

Every fact the rules use is an `Evidence` that names the resource, its date and the matched text,
so a card can always show why it fired. This module reads parsed FHIR only; it never talks HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any

from hooks.common.fhir import (
    attachment_text,
    codings,
    concept_name,
    concept_text,
    condition_active,
    narrative_values,
    onset_date,
    reference,
    resource_date,
)
from hooks.common.knowledge import Terminology
from hooks.nlp import FINDING_EXCLUDE, EmgTextAnalyzer, EmgTextFinding, affirmed_mentions, html_to_text

SNIPPET = 300
_HISTORY_ORDER_STATUSES = ("active", "completed")


@dataclass(frozen=True)
class Evidence:
    ref: str
    when: date | None
    text: str
    label: str = ""
    code: str = ""  # the code that matched, as written in the resource (e.g. "M51.17")

    def cite(self, limit: int = 160) -> str:
        when = self.when.isoformat() if self.when else "undated"
        quote = f': "{_clip(self.text, limit)}"' if self.text else ""
        return f"{self.label + ' — ' if self.label else ''}{self.ref} ({when}){quote}"


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


def _clip(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _newest_first(items: list[Any], key) -> list[Any]:
    return sorted(items, key=lambda x: key(x) or date.min, reverse=True)


class EvidenceBuilder:
    """Holds the compiled knowledge; `build` is called once per hook call."""

    def __init__(self, terms: Terminology, config: dict[str, Any], analyzer: EmgTextAnalyzer) -> None:
        self.terms = terms
        self.cfg = config
        self.windows: dict[str, int] = config["windows_days"]
        self.analyzer = analyzer
        # Report and note texts come back with every hook call for the same patient; reading them is a
        # pure function of the text and the knowledge, so the results are memoized (bounded, thread-safe).
        self._analyze = lru_cache(maxsize=4096)(analyzer.analyze)
        self._impression = lru_cache(maxsize=1024)(analyzer.impression)
        self._affirmed_cached = lru_cache(maxsize=16384)(self._affirmed_uncached)
        self.max_chars = int(config["max_text_chars"])
        self.statuses = set(config["report_statuses"]) | (
            {"preliminary"} if config.get("accept_preliminary_reports") else set()
        )
        flags = re.I | re.S
        self.edx_text = re.compile(config["edx_text"], re.I)
        self.mri_text = re.compile(config["mri_text"], re.I)
        self.plexus_text = re.compile(config["plexus_text"], re.I)
        self.compressive = config["compressive_lesion"]
        self.red_flag_patterns = [
            (p["name"], p["pattern"], p.get("exclude")) for p in config["red_flags"]["text"]
        ]
        self.saddle_site = re.compile(config["red_flags"]["condition_text"]["saddle_site"], re.I)
        self.progressive = re.compile(config["red_flags"]["condition_text"]["progressive_or_bilateral"], re.I)
        motor = config["motor_deficit"]
        self.motor_patterns = [(p["name"], p["pattern"], None) for p in motor["text"]]
        self.grade = re.compile(
            rf"(?P<move>{motor['l5_movements']})[^.;\n]{{0,40}}?\b(?P<grade>[0-5])(?P<mod>[+-])?\s*/\s*5",
            flags,
        )
        self.grade_rev = re.compile(
            rf"\b(?P<grade>[0-5])(?P<mod>[+-])?\s*/\s*5\b[^.;\n]{{0,30}}?(?P<move>{motor['l5_movements']})",
            flags,
        )
        self.severe_grade = int(motor["severe_grade_max"])
        self.deficit_patterns = [(p["name"], p["pattern"], None) for p in config["new_deficits"]["text"]]
        self.radicular = config["radicular_symptoms"]["text"]
        self.generic_notes = set(config["generic_note_codes"])
        self.contrast_text = re.compile(config["contrast_mri_text"], re.I)

    # -- entry point ------------------------------------------------------------------------------

    def build(
        self, resources: dict[str, list[Any]], now: date, draft_orders: Iterable[Any] = ()
    ) -> PatientEvidence:
        ev = PatientEvidence(now=now)
        self._conditions(resources.get("Condition", []), ev)
        self._reports(resources.get("DiagnosticReport", []), resources.get("Observation", []), ev)
        self._documents(resources.get("DocumentReference", []), ev)
        self._procedures(resources.get("Procedure", []), ev)
        self._orders(resources.get("ServiceRequest", []), list(draft_orders), ev)
        self._encounters(resources.get("Encounter", []), ev)
        self._observations(resources.get("Observation", []), ev)
        ev.emg = _newest_first(ev.emg, lambda f: f.evidence.when)
        ev.mri = _newest_first(ev.mri, lambda m: m.evidence.when)
        ev.edx_studies = _newest_first(ev.edx_studies, lambda s: s.evidence.when)
        return ev

    # -- conditions ---------------------------------------------------------------------------------

    def _conditions(self, conditions: list[Any], ev: PatientEvidence) -> None:
        red_window = self.windows["red_flag"]
        deficit_window = self.windows["new_deficit"]
        for cond in conditions:
            if not condition_active(cond):
                continue
            pairs, item = self._coded(cond, cond.code, "condition")
            text = concept_text(cond.code) + " " + " ".join(n.text or "" for n in cond.note or [])
            when = item.when
            recent = when is None or 0 <= (ev.now - when).days <= red_window
            if radic := self.terms.matching("radiculopathy-dx", pairs):
                ev.radic_conditions.append(replace(item, code=radic[0]))
                ev.symptom_conditions.append(replace(item, code=radic[0]))
            if symptom := self.terms.matching("radicular-symptom-dx", pairs):
                ev.symptom_conditions.append(replace(item, code=symptom[0]))
                ev.radicular_symptoms.append(replace(item, code=symptom[0]))
            if self.contrast_text.search(text):
                ev.tumor_or_infection.append(item)
            if self.terms.in_set("cauda-equina", pairs) and recent:
                ev.red_flags.append(item)
            if self.terms.in_set("sphincter-red-flag", pairs) and when is not None and recent:
                ev.red_flags.append(item)
            if self.terms.in_set("sensory-red-flag", pairs) and recent and self.saddle_site.search(text):
                ev.red_flags.append(item)
            if self.terms.in_set("weakness-red-flag", pairs) and recent and self.progressive.search(text):
                ev.red_flags.append(item)
            if self.terms.in_set("foot-drop", pairs) and (
                when is None or (ev.now - when).days <= deficit_window
            ):
                ev.motor_deficit.append(item)
                ev.new_deficits.append(item)

    # -- EMG / MRI reports ------------------------------------------------------------------------

    def _is_edx(self, concept: Any, categories: Any = None) -> tuple[bool, bool]:
        """(is EDX, selected by code). Codes first (LOINC 18749-2, CPT EDX, SNOMED EMG), then text."""
        pairs = codings(concept)
        if self.terms.in_set("edx-report", pairs) or self.terms.in_set("edx-procedure", pairs):
            return True, True
        if categories is not None and self.terms.in_set("edx-category", codings(categories)):
            return True, True
        return bool(self.edx_text.search(concept_text(concept))), False

    def _latest_versions(self, reports: list[Any]) -> list[Any]:
        """One report per identifier (amended/corrected supersede); entered-in-error never counts."""
        groups: dict[str, Any] = {}
        for rep in reports:
            if rep.status not in self.statuses:
                continue
            ids = [f"{i.system}|{i.value}" for i in rep.identifier or [] if i.value]
            key = ids[0] if ids else reference(rep)
            stamp = (
                str(rep.issued or ""),
                str(rep.meta.lastUpdated) if rep.meta and rep.meta.lastUpdated else "",
            )
            if key not in groups or stamp > groups[key][0]:
                groups[key] = (stamp, rep)
        return [rep for _, rep in groups.values()]

    def _reports(self, reports: list[Any], observations: list[Any], ev: PatientEvidence) -> None:
        by_ref = {reference(o): o for o in observations}
        for rep in self._latest_versions(reports):
            when = resource_date(rep)
            is_edx, coded = self._is_edx(rep.code, rep.category)
            if is_edx:
                ev.edx_studies.append(
                    EdxStudy(Evidence(reference(rep), when, "", "EMG/NCS report"), needle=True)
                )
                finding = self._read_report(rep, by_ref)
                if finding is not None:
                    text = finding.matched_text or _clip(rep.conclusion or "")
                    ev.emg.append(
                        EmgFinding(Evidence(reference(rep), when, text, "EMG/NCS report"), finding, coded)
                    )
                continue
            pairs = codings(rep.code)
            lumbar = self.terms.in_set("lumbar-mri", pairs)
            plexus = self.terms.in_set("plexus-mri", pairs)
            name = concept_text(rep.code)
            if lumbar or plexus or self.mri_text.search(name):
                conclusion = self._report_text(rep, impression_only=True)
                compressive = (
                    bool(self._affirmed(conclusion, self.compressive, FINDING_EXCLUDE))
                    if conclusion
                    else False
                )
                ev.mri.append(
                    MriStudy(
                        Evidence(
                            reference(rep),
                            when,
                            _clip(conclusion),
                            "Lumbar MRI" if not plexus else "Plexus MRI",
                        ),
                        compressive=compressive,
                        plexus=plexus or (not lumbar and bool(self.plexus_text.search(name))),
                    )
                )

    def _report_text(self, rep: Any, impression_only: bool) -> str:
        if rep.conclusion:
            return rep.conclusion[: self.max_chars]
        for att in rep.presentedForm or []:
            decoded = attachment_text(att, self.max_chars)
            if decoded:
                return self._impression(*decoded) or ("" if impression_only else decoded[0])
        return ""

    def _read_report(self, rep: Any, observations: dict[str, Any]) -> EmgTextFinding | None:
        """Conclusion first; the presented report's impression when the conclusion says nothing about L5."""
        readings: list[EmgTextFinding] = []
        conclusion = " ".join(
            p for p in [rep.conclusion or "", concept_text(rep.conclusionCode or [])] if p
        ).strip()
        if conclusion:
            readings.append(self._analyze(conclusion[: self.max_chars], is_impression=True))
        for att in rep.presentedForm or []:
            decoded = attachment_text(att, self.max_chars)
            if decoded:
                readings.append(self._analyze(decoded[0], decoded[1]))
        for ref in rep.result or []:
            obs = observations.get(ref.reference or "")
            if obs is not None:
                text = ". ".join(narrative_values(obs))
                if text:
                    readings.append(self._analyze(text[: self.max_chars], is_impression=True))
        return _decide(readings)

    def _documents(self, documents: list[Any], ev: PatientEvidence) -> None:
        for doc in documents:
            if doc.status == "entered-in-error" or doc.docStatus == "entered-in-error":
                continue
            when = resource_date(doc)
            texts = [d for c in doc.content or [] if (d := attachment_text(c.attachment, self.max_chars))]
            is_edx, coded = self._is_edx(doc.type)
            generic = any(code in self.generic_notes for _, code in codings(doc.type))
            if not is_edx and generic and texts and self.edx_text.search(texts[0][0][:2000]):
                is_edx = True
            if is_edx and texts:
                finding = _decide([self._analyze(t, ct) for t, ct in texts])
                ev.edx_studies.append(EdxStudy(Evidence(reference(doc), when, "", "EMG/NCS document"), True))
                if finding is not None:
                    ev.emg.append(
                        EmgFinding(
                            Evidence(reference(doc), when, finding.matched_text, "EMG/NCS note"),
                            finding,
                            coded,
                        )
                    )
                continue
            for text, content_type in texts:
                plain = text if content_type == "text/plain" else html_to_text(text)
                self._scan_text(reference(doc), when, plain, ev, "Clinical note")

    def _procedures(self, procedures: list[Any], ev: PatientEvidence) -> None:
        for proc in procedures:
            if proc.status != "completed":
                continue
            pairs, item = self._coded(proc, proc.code, "procedure")
            if self._is_edx(proc.code)[0]:
                ev.edx_studies.append(EdxStudy(item, needle=self._needle(pairs)))
            self._care(pairs, item, ev)
            if self.terms.in_set("spine-surgery", pairs):
                ev.prior_surgery.append(item)

    def _orders(self, orders: list[Any], drafts: list[Any], ev: PatientEvidence) -> None:
        for sr in orders:
            if sr.status not in _HISTORY_ORDER_STATUSES:
                continue  # revoked, entered-in-error and drafts are not history
            pairs, item = self._coded(sr, sr.code, "order")
            self._care(pairs, item, ev)
            ev.ordered.extend(k for s, c in pairs if (k := self.terms.key(s, c)))
            if sr.status == "completed" and self._is_edx(sr.code)[0]:
                ev.edx_studies.append(EdxStudy(item, needle=self._needle(pairs)))
        for sr in drafts:
            ev.ordered.extend(k for s, c in codings(getattr(sr, "code", None)) if (k := self.terms.key(s, c)))

    def _encounters(self, encounters: list[Any], ev: PatientEvidence) -> None:
        for enc in encounters:
            if enc.status in ("cancelled", "entered-in-error"):
                continue
            pairs, item = self._coded(enc, enc.type or [], "encounter")
            self._care(pairs + codings(enc.serviceType), item, ev)

    def _coded(
        self, res: Any, concept: Any, kind: str
    ) -> tuple[list[tuple[str | None, str | None]], Evidence]:
        """A coded resource as evidence: its codes, date and name (onset for a Condition)."""
        pairs = codings(concept)
        when = onset_date(res) if res.get_resource_type() == "Condition" else resource_date(res)
        codes = [c for _, c in pairs if c]
        item = Evidence(
            reference(res),
            when,
            _clip(concept_text(concept), 120),
            label=", ".join(codes) or kind,
            code=codes[0] if codes else "",
        )
        return pairs, item

    def _needle(self, pairs: list[tuple[str | None, str | None]]) -> bool:
        """A completed EDX study counts as needle EMG unless it is coded as NCS only."""
        return self.terms.in_set("needle-emg", pairs) or not self.terms.in_set("ncs", pairs)

    def _care(self, pairs: list[tuple[str | None, str | None]], item: Evidence, ev: PatientEvidence) -> None:
        if self.terms.in_set("pt", pairs):
            ev.pt.append(item)
        if self.terms.in_set("esi", pairs):
            ev.esi.append(item)
        if self.terms.in_set("spine-referral", pairs):
            ev.spine_referral.append(item)

    # -- free text: exam observations and notes ------------------------------------------------------

    def _observations(self, observations: list[Any], ev: PatientEvidence) -> None:
        for obs in observations:
            if obs.status in ("entered-in-error", "cancelled"):
                continue
            when = resource_date(obs)
            values = narrative_values(obs)
            if obs.valueBoolean is True:
                values.append(concept_text(obs.code))
            if values:
                self._scan_text(
                    reference(obs), when, ". ".join(values), ev, concept_name(obs.code) or "Observation"
                )

    def _scan_text(self, ref: str, when: date | None, text: str, ev: PatientEvidence, label: str) -> None:
        age = None if when is None else (ev.now - when).days
        if age is None or age < 0:
            return
        text = text[: self.max_chars]
        if age <= self.windows["red_flag"]:
            ev.red_flags.extend(self._mentions(ref, when, text, self.red_flag_patterns, label))
        if age <= self.windows["new_deficit"]:
            ev.new_deficits.extend(self._mentions(ref, when, text, self.deficit_patterns, label))
            ev.motor_deficit.extend(self._mentions(ref, when, text, self.motor_patterns, label))
            ev.motor_deficit.extend(self._severe_grades(ref, when, text, label))
        if re.search(self.radicular, text, re.I) and (hits := self._affirmed(text, self.radicular)):
            ev.radicular_symptoms.append(Evidence(ref, when, _clip(hits[0]), label))

    def _affirmed(self, text: str, pattern: str, exclude: Any = None) -> tuple[str, ...]:
        return self._affirmed_cached(text, pattern, exclude)

    def _affirmed_uncached(self, text: str, pattern: str, exclude: Any) -> tuple[str, ...]:
        kwargs = {"exclude": exclude} if exclude is not None else {}
        return tuple(affirmed_mentions(text, pattern, engine=self.analyzer.engine, **kwargs))

    def _mentions(self, ref: str, when: date | None, text: str, patterns, label: str) -> list[Evidence]:
        found = []
        for name, pattern, exclude in patterns:
            if not re.search(pattern, text, re.I):
                continue  # cheap regex gate before the negation-aware reading
            hits = [h for h in self._affirmed(text, pattern) if not (exclude and re.search(exclude, h, re.I))]
            if hits:
                found.append(Evidence(ref, when, _clip(hits[0]), f"{label}: {name}"))
        return found

    def _severe_grades(self, ref: str, when: date | None, text: str, label: str) -> list[Evidence]:
        for rx in (self.grade, self.grade_rev):
            for m in rx.finditer(text):
                # MRC grades: 3+ and 4- sit between whole grades, so "3+/5" is not "3/5 or less".
                grade = int(m.group("grade")) + {"+": 0.5, "-": -0.5}.get(m.group("mod") or "", 0.0)
                if grade <= self.severe_grade:
                    return [Evidence(ref, when, _clip(m.group(0)), f"{label}: severe L5 weakness")]
        return []


def _decide(readings: list[EmgTextFinding]) -> EmgTextFinding | None:
    """A negative or uncertain reading of the conclusion is not overruled by another part of the report."""
    if not readings:
        return None
    first = readings[0]
    if first.positive or first.negated or first.uncertain or first.l5_radiculopathy or first.other_roots:
        return first
    for reading in readings[1:]:
        if reading.positive or reading.negated or reading.uncertain or reading.l5_radiculopathy:
            return reading
    return first
