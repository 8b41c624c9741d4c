"""Rule A: EMG-proven L5 radiculopathy with axon loss -> next steps (clinical brief 4.1, issues 3 and 11).

Patient-view rules A0-A5 and three order-select checks. Each rule is a small function of the typed
`PatientEvidence`; the facts every rule shares (the deciding EMG, the episode and its duration, the MRI
that counts) are computed once in the evidence layer, so patient-view and order-select always agree.
Thresholds, codes and wording come from the knowledge files.
"""

from __future__ import annotations

import re

from cds.cards import Card, Suggestion
from cds.registry import HookInput
from hooks.common.cardkit import CardKit, OrderSpec, Quotes, bullets
from hooks.common.fhir import codings
from hooks.evidence.builder import EvidenceBuilder
from hooks.evidence.model import Evidence, PatientEvidence, day

_ICD10 = re.compile(r"^[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?$")  # an ICD-10-CM code as written


def weeks(days: int | None) -> str:
    if days is None:
        return "duration unknown"
    return f"{days // 7} weeks ({days} days)" if days >= 14 else f"{days} days"


class L5Rules:
    def __init__(self, builder: EvidenceBuilder, kit: CardKit) -> None:
        self.builder = builder
        self.kit = kit
        self.w = builder.windows
        self.terms = builder.terms

    # -- shared phrases ------------------------------------------------------------------------------------

    def emg_line(self, evidence: PatientEvidence, quotes: Quotes) -> str:
        emg = evidence.emg
        if emg is None:
            return "no EMG-proven L5 radiculopathy on file"
        f = emg.finding
        what = " ".join(p for p in [f.laterality, "L5 radiculopathy with", _axon(f.chronicity)] if p)
        return quotes.cite(emg.evidence, what)

    def duration(self, evidence: PatientEvidence, quotes: Quotes) -> str:
        """The duration of the current episode, and which document dated its onset (quoted once)."""
        episode = evidence.episode
        if episode.onset is None or episode.source is None:
            return "duration unknown"
        src = episode.source
        if src.what == "stated onset":
            key = (src.ref, src.text)
            quote = "" if key in quotes.seen else f": \u201c{src.text}\u201d"
            quotes.seen.add(key)
            origin = f"as written in the {src.label}{quote}"
        elif src.label.startswith("EMG"):
            # No onset is written anywhere: the EMG only proves the problem existed by then.
            since = f"counted from the EMG of {day(episode.onset)}"
            return f"at least {weeks(evidence.days)} (onset not documented; {since})"
        else:
            origin = f"onset of {src.coded()} ({src.label.lower()})"
        return f"{weeks(evidence.days)}, since {day(episode.onset)}, {origin}"

    def pt_status(self, evidence: PatientEvidence) -> str:
        course = evidence.care.pt_course
        if course:
            return (
                f"yes, {course[0].source()} ({course[0].text})"
                if course[0].what == "course of PT"
                else course[0].cite()
            )
        if evidence.care.pt:
            last = evidence.care.pt[-1]
            return f"started ({last.source()}: {last.text}), no completed course documented"
        return "none documented"

    def incomplete(self, evidence: PatientEvidence, *types: str) -> str:
        cut = evidence.cut_short(*types)
        return f" (the chart search for {cut} was cut short: check the chart)" if cut else ""

    def _suggest(
        self,
        evidence: PatientEvidence,
        call: HookInput,
        key: str,
        label: str,
        *,
        priority: str = "routine",
        recommended: bool | None = None,
        emergency: bool = False,
    ) -> Suggestion | None:
        """A one-click draft order, unless the same order is already active or being placed."""
        if self.kit.ordered(key, evidence.ordered):
            return None
        spec = self.kit.order(key)
        refs = [e.ref for e in evidence.red_flags[:2]] if emergency else []
        refs += [evidence.emg.evidence.ref] if evidence.emg else []
        resource = self.kit.draft_order(
            spec, call.patient_id, reason=self._reason(evidence, emergency), evidence=refs, priority=priority
        )
        name = spec.display
        if label and not label.endswith(":") and name[:2].istitle():  # "Consider transforaminal ..."
            name = name[0].lower() + name[1:]
        return self.kit.create(f"{label} {name} ({spec.code})".strip(), resource, recommended=recommended)

    def _reason(self, evidence: PatientEvidence, emergency: bool) -> OrderSpec | None:
        """The diagnosis a suggested order carries: what the chart documents, never a code it does not.
        An emergency order carries the coded red flag; otherwise the chart's own radiculopathy diagnosis;
        for an EMG-proven L5 radiculopathy with no coded diagnosis, the service's default (cards.yaml
        `reason_code`, the EMG being the documentation); with none of these, no code at all."""
        coded = [*(evidence.red_flags if emergency else []), *evidence.diagnoses.radiculopathy]
        for e in coded:
            if _ICD10.match(e.code):
                return OrderSpec(system="icd10cm", code=e.code, display=e.display or e.text)
        return self.kit.text.reason_code if evidence.emg else None

    # -- patient-view: A0-A5 ----------------------------------------------------------------------------

    def patient_view(self, call: HookInput) -> list[Card]:
        evidence = self.builder.build(call)
        quotes = Quotes()
        red = self.red_flags(evidence, call)
        if red:
            return red  # an emergency: no routine card beside it
        if evidence.emg is None:
            return self._unreadable(evidence)
        cards: list[Card] = []
        severe = bool(evidence.motor.severe)
        days = evidence.days
        no_mri = not evidence.qualifying_mri() and not evidence.imaging.pending
        if no_mri:
            cards.append(
                self._mri(evidence, call, severe, quotes)
            )  # no MRI on file: the MRI card comes first
        if severe:
            cards.append(self._motor(evidence, quotes))
        if not severe and days is not None and days < self.w.conservative_min:
            cards.append(self._conservative(evidence, call, quotes))
        if (
            (days or 0) >= self.w.conservative_min
            and evidence.persisting
            and not evidence.within(evidence.care.esi, self.w.esi_recent)
        ):
            cards.append(self._esi(evidence, call, quotes))
        surgical = self._surgical(evidence, call, severe, quotes)
        if surgical:
            cards.append(surgical)
        return cards

    def _unreadable(self, evidence: PatientEvidence) -> list[Card]:
        """The newest relevant EMG/NCS report is a file the service could not read (brief 5.5)."""
        spec = self.kit.spec("emg-unreadable")
        recent = [e for e in evidence.edx.unreadable if evidence.within_days(e.when, self.w.emg_lookback)]
        if not spec.enabled or not recent:
            return []
        report = recent[0]
        detail = spec.detail.format(
            report=report.source(), reason=spec.text.get(report.what, spec.text["other"])
        )
        return [self.kit.card("emg-unreadable", "info", detail, overrides=None)]

    def red_flags(self, evidence: PatientEvidence, call: HookInput) -> list[Card]:
        if not evidence.red_flags:
            return []
        # What was already done since the newest red flag is shown, not offered again: a critical card
        # that keeps offering an emergency MRI the patient has had would be overridden, and rightly.
        since = max((e.when for e in evidence.red_flags if e.when), default=None)
        mri_done = [
            m
            for m in evidence.imaging.mri
            if not m.plexus and since and m.evidence.when and m.evidence.when >= since
        ]
        referred = [e for e in evidence.care.spine_referral if since and e.when and e.when >= since]
        suggestions = [
            s
            for s in (
                None
                if mri_done
                else self._suggest(
                    evidence, call, "mri_lumbar", "Emergency:", priority="stat", emergency=True
                ),
                None
                if referred
                else self._suggest(
                    evidence, call, "spine_referral", "Emergency:", priority="stat", emergency=True
                ),
            )
            if s
        ]
        text = self.kit.spec("red-flags").text
        done = [text["mri_done"].format(value=mri_done[0].evidence.cite())] if mri_done else []
        done += [text["referred"].format(value=referred[0].source())] if referred else []
        grouped: dict[tuple[str, str], list[Evidence]] = {}
        for e in evidence.red_flags:
            grouped.setdefault((e.ref, e.text), []).append(e)
        lines = []
        for items in list(grouped.values())[:5]:
            what = " and ".join(dict.fromkeys(e.what for e in items))
            lines.append(f"{what[:1].upper()}{what[1:]}: {items[0].cite()}")
        detail = self.kit.spec("red-flags").detail.format(
            red_flag_days=self.w.red_flag, evidence=bullets(lines), done="".join(f"\n\n{d}" for d in done)
        )
        return [
            self.kit.card(
                "red-flags", "critical", detail, suggestions, overrides="red-flags", selection="any"
            )
        ]

    def _motor(self, evidence: PatientEvidence, quotes: Quotes) -> Card:
        first = evidence.motor.severe[0]
        exam = f"{first.what}. {quotes.cite(first)}"
        more = [e for e in evidence.motor.severe[1:3] if e.ref != first.ref]
        if more:
            exam += "\n\n" + bullets(f"{e.what}: {quotes.cite(e)}" for e in more)
        detail = self.kit.spec("motor-deficit").detail.format(exam=exam, emg=self.emg_line(evidence, quotes))
        return self.kit.card("motor-deficit", "warning", detail)

    def _mri(self, evidence: PatientEvidence, call: HookInput, severe: bool, quotes: Quotes) -> Card:
        spec = self.kit.spec("mri")
        reason = ""
        if evidence.care.prior_surgery:
            reason = spec.text["contrast_surgery"]
        elif evidence.care.tumor_or_infection:
            reason = spec.text["contrast_tumor"].format(condition=evidence.care.tumor_or_infection[0].text)
        key = "mri_lumbar_contrast" if reason else "mri_lumbar"
        order = self.kit.order(key)
        urgent = severe or (evidence.days or 0) >= self.w.conservative_min
        priority = "urgent" if severe else "routine"
        suggestions = [
            s
            for s in (
                self._suggest(evidence, call, key, "Order", priority=priority, recommended=True),
                self._suggest(evidence, call, "mri_plexus", "Second line:", priority=priority),
            )
            if s
        ]
        finding = evidence.emg.finding if evidence.emg else None
        low = finding is not None and (finding.multi_level or finding.confidence == "low")
        detail = spec.detail.format(
            emg=self.emg_line(evidence, quotes),
            duration=self.duration(evidence, quotes),
            incomplete=self.incomplete(evidence, "DiagnosticReport", "DocumentReference"),
            mri_code=order.code,
            mri_name=order.display,
            mri_reason=reason,
            confidence_note=spec.text["low_confidence"] if low else "",
            # Beside the conservative-care card, an early MRI card says when it is worth doing now.
            timing="" if urgent else spec.text["early"],
        )
        return self.kit.card("mri", "warning" if urgent else "info", detail, suggestions)

    def _conservative(self, evidence: PatientEvidence, call: HookInput, quotes: Quotes) -> Card:
        recent_pt = evidence.within(evidence.care.pt, self.w.pt_recent)
        suggestions = []
        if not recent_pt:
            pt = self._suggest(evidence, call, "pt_referral", "")
            suggestions = [pt] if pt else []
        if recent_pt:
            pt_status = f"in progress ({recent_pt[-1].source()}: {recent_pt[-1].text})"
        else:
            pt_status = f"none in the last {self.w.pt_recent} days; referral suggested"
            pt_status += self.incomplete(evidence, "Procedure", "ServiceRequest", "Encounter")
        detail = self.kit.spec("conservative-care").detail.format(
            emg=self.emg_line(evidence, quotes), duration=self.duration(evidence, quotes), pt_status=pt_status
        )
        return self.kit.card("conservative-care", "info", detail, suggestions)

    def _esi(self, evidence: PatientEvidence, call: HookInput, quotes: Quotes) -> Card:
        spec = self.kit.spec("esi")
        mri = evidence.qualifying_mri()
        if mri:
            m = mri[0]
            imaging = (  # the radiologist's words, so concordance (level, side) can be judged at a glance
                quotes.cite(m.evidence) if m.compressive else f"{m.evidence.source()} (no compressive lesion)"
            )
        else:
            imaging = spec.text["no_mri"]
        # The one-click injection is offered only when order-select would not call it premature and the
        # imaging that payers require is on file; otherwise the MRI card comes first.
        suggestion = self._suggest(evidence, call, "tfesi", "Consider") if mri else None
        persisting = _persisting(evidence)
        detail = spec.detail.format(
            emg=self.emg_line(evidence, quotes),
            duration=self.duration(evidence, quotes),
            pt_status=self.pt_status(evidence),
            imaging_status=imaging,
            persisting=persisting,
        )
        return self.kit.card("esi", "info", detail, [suggestion] if suggestion else [])

    def _surgical(
        self, evidence: PatientEvidence, call: HookInput, severe: bool, quotes: Quotes
    ) -> Card | None:
        if evidence.within(evidence.care.spine_referral, self.w.referral_recent):
            return None
        days = evidence.days or 0
        treated = bool(evidence.care.pt_course or evidence.within(evidence.care.esi, 365))
        failed = days >= self.w.conservative_min and treated and evidence.persisting
        mri = evidence.qualifying_mri()
        compressive = [m for m in mri if m.compressive]
        if not (failed or compressive or severe):
            return None
        why = []
        if severe:
            why.append("severe or progressive motor deficit")
        if failed:
            why.append(f"symptoms for {weeks(evidence.days)} despite conservative care")
        if compressive:
            why.append("the MRI shows a compressive lesion")
        spec = self.kit.spec("surgical-referral")
        shown = compressive[0] if compressive else (mri[0] if mri else None)
        mri_text = quotes.cite(shown.evidence) if shown else "none on file since symptoms began"
        urgent = severe or days >= self.w.conservative_max
        # Without a current MRI, order-select would answer a referral with "MRI first": so does this card.
        suggestion = (
            self._suggest(evidence, call, "spine_referral", "", priority="urgent" if severe else "routine")
            if mri
            else None
        )
        detail = spec.detail.format(
            why="; ".join(why),
            emg=self.emg_line(evidence, quotes),
            mri=mri_text,
            mri_first="" if mri else spec.text["mri_first_urgent" if severe else "mri_first"],
        )
        return self.kit.card(
            "surgical-referral", "warning" if urgent else "info", detail, [suggestion] if suggestion else []
        )

    # -- order-select ------------------------------------------------------------------------------------

    def order_select(self, call: HookInput) -> list[Card]:
        evidence = self.builder.build(call)
        quotes = Quotes()
        red = self.red_flags(evidence, call)
        if red:
            return red  # an emergency: no routine documentation or timing advice next to it
        selected = [
            o
            for o in call.draft_orders
            if o.get_resource_type() == "ServiceRequest" and f"ServiceRequest/{o.id}" in call.selections
        ]
        kinds = {self._kind(o) for o in selected} - {None}
        cards: list[Card] = []
        if "mri" in kinds and evidence.emg:
            cards.append(self._mri_documentation(evidence, quotes))
        if (
            "esi" in kinds
            and evidence.days is not None
            and evidence.days < self.w.conservative_min
            and not evidence.motor.severe
        ):
            detail = self.kit.spec("esi-timing").detail.format(
                duration=self.duration(evidence, quotes), pt_status=self.pt_status(evidence)
            )
            cards.append(self.kit.card("esi-timing", "info", detail))
        if "referral" in kinds and evidence.emg and not evidence.qualifying_mri():
            cards.append(self._mri_before_surgery(evidence, call, quotes))
        return cards

    def _kind(self, order) -> str | None:
        pairs = codings(order.code)
        if self.terms.in_set("lumbar-mri", pairs) or self.terms.in_set("plexus-mri", pairs):
            return "mri"
        if self.terms.in_set("esi", pairs):
            return "esi"
        if self.terms.in_set("spine-referral", pairs):
            return "referral"
        return None

    def _mri_documentation(self, evidence: PatientEvidence, quotes: Quotes) -> Card:
        deficits = evidence.within(evidence.motor.new_deficits, self.w.new_deficit)
        # One sentence can be both "severe L5 weakness" and "weakness": name it once, by its first reading.
        first_readings: dict[tuple[str, str], Evidence] = {}
        for e in deficits:
            first_readings.setdefault((e.ref, e.text), e)
        deficits = list(first_readings.values())
        neuro = "; ".join(f"{e.what} ({e.source()})" for e in deficits[:3]) or (
            f"none documented in the last {self.w.new_deficit} days"
        )
        detail = self.kit.spec("mri-documentation").detail.format(
            emg=self.emg_line(evidence, quotes),
            duration=self.duration(evidence, quotes),
            neuro=neuro,
            pt_status=self.pt_status(evidence),
        )
        return self.kit.card("mri-documentation", "info", detail, overrides=None)

    def _mri_before_surgery(self, evidence: PatientEvidence, call: HookInput, quotes: Quotes) -> Card:
        mri = self._suggest(evidence, call, "mri_lumbar", "Order first:")
        older = [m for m in evidence.imaging.mri if not m.plexus]
        status = (
            f"the last one, {older[0].evidence.source()}, predates this episode or is over a year old"
            if older
            else "none on file"
        )
        detail = self.kit.spec("mri-before-surgery").detail.format(
            emg=self.emg_line(evidence, quotes),
            mri_status=status,
            incomplete=self.incomplete(evidence, "DiagnosticReport", "DocumentReference"),
            mri_code=self.kit.order("mri_lumbar").code,
        )
        return self.kit.card("mri-before-surgery", "info", detail, [mri] if mri else [])


def _axon(chronicity: str | None) -> str:
    return {
        "acute": "active denervation (axon loss)",
        "chronic": "chronic axon loss",
        "chronic-active": "active and chronic denervation (axon loss)",
    }.get(chronicity or "", "axon loss")


def _persisting(evidence: PatientEvidence) -> str:
    """Why the symptoms count as still present, without repeating the diagnosis the duration line names."""
    conditions = evidence.diagnoses.symptom_conditions
    if not conditions:
        return "documented in recent notes"
    first = conditions[0]
    where = "on the problem list" if first.label == "Problem list" else "as an encounter diagnosis"
    dated_by = evidence.episode.source.ref if evidence.episode.source else None
    return f"active {where}" if first.ref == dated_by else f"{first.coded()} active {where}"
