"""Rule A: EMG-proven L5 radiculopathy with axon loss -> next steps (clinical brief 4.1, issue 3).

Rules A0-A5 for patient-view and three order-select checks. Each rule is a small function of
`PatientEvidence`; thresholds, codes and wording come from the knowledge files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds.cards import Card, Suggestion
from cds.registry import HookInput
from hooks.common.cardkit import CardKit, bullets
from hooks.common.fhir import codings
from hooks.evidence.builder import EmgFinding, EvidenceBuilder, PatientEvidence


@dataclass(frozen=True)
class Situation:
    """The facts every Rule-A card is phrased from, computed once per call."""

    ev: PatientEvidence
    emg: EmgFinding | None  # the most recent readable EMG in the window, if it is positive
    onset: date | None
    days: int | None  # symptom duration in days
    mri_since_onset: bool
    mri_pending: bool
    persisting: bool


def _weeks(days: int | None) -> str:
    if days is None:
        return "unknown"
    return f"{days // 7} weeks ({days} days)" if days >= 14 else f"{days} days"


class L5Rules:
    def __init__(self, builder: EvidenceBuilder, kit: CardKit) -> None:
        self.builder = builder
        self.kit = kit
        self.w = builder.windows
        self.cards = kit.text["cards"]
        self.order_cards = kit.text["order_cards"]
        self.orders = kit.text["orders"]

    # -- shared facts -------------------------------------------------------------------------------

    def situation(self, inp: HookInput) -> Situation:
        ev = self.builder.build(inp.resources, inp.now.date(), inp.draft_orders)
        recent = [
            f
            for f in ev.emg
            if f.evidence.when and 0 <= (ev.now - f.evidence.when).days <= self.w["emg_lookback"]
        ]
        emg = recent[0] if recent and recent[0].finding.positive else None  # newest reading decides
        starts = [e.when for e in ev.symptom_conditions if e.when]
        if emg and emg.evidence.when:
            starts.append(emg.evidence.when)
        onset = min(starts) if starts else None
        since = max(
            d for d in [onset, date.fromordinal(ev.now.toordinal() - self.w["imaging_lookback"])] if d
        )
        mri_since = any(m.evidence.when and m.evidence.when >= since and not m.plexus for m in ev.mri)
        pending = self.builder.terms.sets["lumbar-mri"]
        mri_pending = any(k in pending for k in ev.ordered)
        return Situation(
            ev, emg, onset, ev.days_since(onset), mri_since, mri_pending, bool(ev.symptom_conditions)
        )

    def _emg_line(self, s: Situation) -> str:
        if s.emg is None:
            return "no EMG-proven L5 radiculopathy on file"
        f = s.emg.finding
        bits = [b for b in (f.laterality, f.chronicity) if b]
        qual = f" ({', '.join(bits)})" if bits else ""
        return f"{s.emg.evidence.cite()}{qual}; confidence {f.confidence}"

    def _pt_status(self, s: Situation) -> str:
        pt = s.ev.pt
        return f"yes, {pt[-1].cite()}" if pt else "none documented"

    def _has_order(self, s: Situation, key: str) -> bool:
        spec = self.orders[key]
        return self.builder.terms.key(self.builder.terms.uri[spec["system"]], spec["code"]) in s.ev.ordered

    def _suggest(
        self,
        s: Situation,
        inp: HookInput,
        key: str,
        verb: str,
        *,
        priority: str = "routine",
        recommended: bool | None = None,
    ) -> Suggestion | None:
        """A draft order from the knowledge file's `orders.<key>`, labelled "<verb> <display> (<code>)"."""
        if self._has_order(s, key):
            return None  # never duplicate an order already active or in the draft bundle
        reason = self.kit.text["reason_code"]
        refs = [s.emg.evidence.ref] if s.emg else []
        resource = self.kit.draft_order(
            self.orders[key], inp.patient_id, reason=reason, evidence=refs, priority=priority
        )
        label = f"{verb} {self.orders[key]['display']} ({self.orders[key]['code']})".strip()
        return self.kit.create(label, resource, recommended=recommended)

    # -- patient-view: A0-A5 ---------------------------------------------------------------------------

    def patient_view(self, inp: HookInput) -> list[Card]:
        s = self.situation(inp)
        red = self.red_flags(s, inp)
        if red:
            return red
        if s.emg is None:
            return []
        cards: list[Card] = []
        a1 = bool(s.ev.motor_deficit)
        if a1:
            cards.append(self._motor(s))
        if not s.mri_since_onset and not s.mri_pending:
            cards.append(self._mri(s, inp, a1))
        if not a1 and s.days is not None and s.days < self.w["conservative_min"]:
            cards.append(self._conservative(s, inp))
        if (
            (s.days or 0) >= self.w["conservative_min"]
            and s.persisting
            and not s.ev.within(s.ev.esi, self.w["esi_recent"])
        ):
            cards.append(self._esi(s, inp))
        surgical = self._surgical(s, inp, a1)
        if surgical:
            cards.append(surgical)
        return cards

    def red_flags(self, s: Situation, inp: HookInput) -> list[Card]:
        if not s.ev.red_flags:
            return []
        spec = self.cards["red-flags"]
        suggestions = [
            x
            for x in (
                self._suggest(
                    s,
                    inp,
                    "mri_lumbar",
                    "Emergency:",
                    priority="stat",
                ),
                self._suggest(s, inp, "spine_referral", "Emergency:", priority="stat"),
            )
            if x
        ]
        detail = spec["detail"].format(red_flag_days=self.w["red_flag"], evidence=bullets(s.ev.red_flags))
        return [
            self.kit.card(
                "red-flags", "critical", spec["summary"], detail, spec["source"], suggestions, selection="any"
            )
        ]

    def _motor(self, s: Situation) -> Card:
        spec = self.cards["motor-deficit"]
        detail = spec["detail"].format(evidence=bullets(s.ev.motor_deficit), emg=self._emg_line(s))
        detail += "\n\nThe MRI and spine-surgery referral cards are raised to warning with urgent priority."
        return self.kit.card("motor-deficit", "warning", spec["summary"], detail, spec["source"])

    def _mri(self, s: Situation, inp: HookInput, a1: bool) -> Card:
        spec = self.cards["mri"]
        why_contrast = (
            "prior lumbar surgery"
            if s.ev.prior_surgery
            else f"suspected tumor or infection ({s.ev.tumor_or_infection[0].text})"
            if s.ev.tumor_or_infection
            else ""
        )
        key = "mri_lumbar_contrast" if why_contrast else "mri_lumbar"
        code = self.orders[key]["code"]
        urgent = a1 or (s.days or 0) >= self.w["conservative_min"]
        priority = "urgent" if a1 else "routine"
        suggestions = [
            x
            for x in (
                self._suggest(s, inp, key, "Order", priority=priority, recommended=True),
                self._suggest(s, inp, "mri_plexus", "Second line:", priority=priority),
            )
            if x
        ]
        finding = s.emg.finding if s.emg else None
        note = ""
        if finding and (finding.multi_level or finding.confidence == "low"):
            note = "\n\n_Multi-level or disc-level notation in the EMG (e.g. L5-S1): confirm the root._"
        detail = spec["detail"].format(
            emg=self._emg_line(s),
            duration=_weeks(s.days),
            mri_code=code,
            mri_name=self.orders[key]["display"],
            mri_reason=f" with contrast because of {why_contrast}" if why_contrast else "",
            confidence_note=note,
        )
        return self.kit.card(
            "mri", "warning" if urgent else "info", spec["summary"], detail, spec["source"], suggestions
        )

    def _conservative(self, s: Situation, inp: HookInput) -> Card:
        spec = self.cards["conservative-care"]
        recent_pt = s.ev.within(s.ev.pt, self.w["pt_recent"])
        suggestions = []
        if not recent_pt:
            pt = self._suggest(s, inp, "pt_referral", "")
            suggestions = [pt] if pt else []
        none = f"none in the last {self.w['pt_recent']} days: refer"
        pt_status = f"in progress ({recent_pt[-1].cite()})" if recent_pt else none
        detail = spec["detail"].format(emg=self._emg_line(s), duration=_weeks(s.days), pt_status=pt_status)
        return self.kit.card(
            "conservative-care", "info", spec["summary"], detail, spec["source"], suggestions
        )

    def _esi(self, s: Situation, inp: HookInput) -> Card:
        spec = self.cards["esi"]
        mri = s.ev.mri[0] if s.ev.mri else None
        imaging = (
            f"MRI {mri.evidence.cite()}" + (" shows a compressive lesion" if mri.compressive else "")
            if mri
            else "no MRI yet: the MRI card comes first"
        )
        suggestion = self._suggest(s, inp, "tfesi", "Consider")
        detail = spec["detail"].format(
            emg=self._emg_line(s),
            duration=_weeks(s.days),
            pt_status=self._pt_status(s),
            imaging_status=imaging,
            persisting=", ".join(e.label for e in s.ev.symptom_conditions[:3]) or "active diagnosis",
        )
        return self.kit.card(
            "esi", "info", spec["summary"], detail, spec["source"], [suggestion] if suggestion else []
        )

    def _surgical(self, s: Situation, inp: HookInput, a1: bool) -> Card | None:
        if s.ev.within(s.ev.spine_referral, self.w["referral_recent"]):
            return None
        days = s.days or 0
        failed = days >= self.w["conservative_min"] and (s.ev.pt or s.ev.esi) and s.persisting
        compressive = [m for m in s.ev.mri if m.compressive]
        if not (failed or compressive or a1):
            return None
        why = []
        if a1:
            why.append("severe or progressive motor deficit")
        if failed:
            why.append(f"symptoms for {_weeks(s.days)} despite conservative care")
        if compressive:
            why.append("MRI shows a compressive lesion")
        spec = self.cards["surgical-referral"]
        mri = compressive[0] if compressive else (s.ev.mri[0] if s.ev.mri else None)
        detail = spec["detail"].format(
            why="; ".join(why),
            emg=self._emg_line(s),
            mri=mri.evidence.cite() if mri else "none on file",
        )
        urgent = a1 or days >= self.w["conservative_max"]
        suggestion = self._suggest(
            s,
            inp,
            "spine_referral",
            "",
            priority="urgent" if a1 else "routine",
        )
        return self.kit.card(
            "surgical-referral",
            "warning" if urgent else "info",
            spec["summary"],
            detail,
            spec["source"],
            [suggestion] if suggestion else [],
        )

    # -- order-select ------------------------------------------------------------------------------------

    def order_select(self, inp: HookInput) -> list[Card]:
        s = self.situation(inp)
        red = self.red_flags(s, inp)
        if red:
            return red  # an emergency: no routine documentation or timing advice next to it
        cards: list[Card] = []
        selected = [
            o
            for o in inp.draft_orders
            if o.get_resource_type() == "ServiceRequest" and f"ServiceRequest/{o.id}" in inp.selections
        ]
        terms = self.builder.terms
        neuro = (
            bullets(s.ev.new_deficits, 3)
            if s.ev.new_deficits
            else f"none documented in the last {self.w['new_deficit']} days"
        )
        for order in selected:
            pairs = codings(order.code)
            if (terms.in_set("lumbar-mri", pairs) or terms.in_set("plexus-mri", pairs)) and s.emg:
                spec = self.order_cards["mri-documentation"]
                detail = spec["detail"].format(
                    emg=self._emg_line(s), duration=_weeks(s.days), neuro=neuro, pt_status=self._pt_status(s)
                )
                cards.append(
                    self.kit.card(
                        "mri-documentation", "info", spec["summary"], detail, spec["source"], overrides=None
                    )
                )
            elif (
                terms.in_set("esi", pairs)
                and s.days is not None
                and s.days < self.w["conservative_min"]
                and not s.ev.motor_deficit
            ):
                spec = self.order_cards["esi-timing"]
                detail = spec["detail"].format(duration=_weeks(s.days), pt_status=self._pt_status(s))
                cards.append(self.kit.card("esi-timing", "info", spec["summary"], detail, spec["source"]))
            elif terms.in_set("spine-referral", pairs) and not s.ev.mri and s.emg:
                spec = self.order_cards["mri-before-surgery"]
                mri = self._suggest(s, inp, "mri_lumbar", "Order first:")
                detail = spec["detail"].format(emg=self._emg_line(s))
                cards.append(
                    self.kit.card(
                        "mri-before-surgery",
                        "info",
                        spec["summary"],
                        detail,
                        spec["source"],
                        [mri] if mri else [],
                    )
                )
        return cards
