"""Rule B: lower-limb EMG/NCS orders whose only diagnosis excludes radiculopathy (brief 4.2, issues 4, 11).

A coverage and coding check, not a safety one: one warning card per decision (all affected orders of the
call together), the payer checklist built from the chart, and fixes the chart supports. A diagnosis change
is one click away only when radicular findings are documented, and the card says which (coding
compliance: a code the chart does not support must not be one click away).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cds.cards import Action, Card, Suggestion
from cds.registry import HookInput
from hooks.common.cardkit import CardKit, OrderSpec, Quotes, bullets
from hooks.common.fhir import codings, concept_name, concept_text, condition_usable, resource_json
from hooks.common.knowledge import normalize_code
from hooks.common.schema import KnowledgeFile, Regex, Strict
from hooks.evidence.builder import EvidenceBuilder
from hooks.evidence.model import Evidence, PatientEvidence

LOWER, UPPER, BOTH, UNKNOWN, NON_LIMB = "lower", "upper", "both", "unknown", "non-limb"


class LimbText(Strict):
    lower: Regex
    upper: Regex
    lower_region: Regex
    upper_region: Regex
    non_limb: Regex


class PolicyFile(KnowledgeFile):
    mode: str
    mismatch_codes: list[str]
    limb_text: LimbText
    diagnosis_codes: dict[str, OrderSpec]
    referrals: dict[str, OrderSpec]
    max_suggestions: int


@dataclass
class EdxOrder:
    order: Any
    limb: str
    icd: tuple[str, ...]  # ICD-10-CM codes as written on the order or its usable reason Conditions
    drop_refs: tuple[str, ...]  # reasonReference entries that hold only the mismatched diagnosis
    unresolved: tuple[str, ...]
    needle: bool  # needle EMG in this order, its bundle or a sibling draft of the same encounter
    ncs: bool
    siblings: list[Any] = field(default_factory=list)  # draft EDX orders of the encounter on the chart


class EmgNecessityRules:
    def __init__(self, builder: EvidenceBuilder, kit: CardKit, policy: PolicyFile) -> None:
        self.builder = builder
        self.terms = builder.terms
        self.kit = kit
        self.policy = policy
        limb = policy.limb_text
        self.lower, self.upper = re.compile(limb.lower, re.I), re.compile(limb.upper, re.I)
        self.lower_region, self.upper_region = (
            re.compile(limb.lower_region, re.I),
            re.compile(limb.upper_region, re.I),
        )
        self.non_limb = re.compile(limb.non_limb, re.I)
        self.mismatch = {normalize_code("icd10cm", c) for c in policy.mismatch_codes}
        self.extended = policy.mode == "extended"

    # -- which draft orders are EDX orders, and of which limb --------------------------------------------

    def is_edx(self, order: Any) -> bool:
        """Only EDX procedure codes make an EDX order; text decides only for an order with no CPT code."""
        pairs = codings(order.code)
        if self.terms.in_set("edx-procedure", pairs):
            return True
        if any(self.terms.system_key(s) == "cpt" for s, _ in pairs):
            return False  # coded as something else (surface-EMG biofeedback 90901, a lab, PT)
        is_edx, _ = self.builder.edx.is_edx(order.code)
        return is_edx

    def limb(self, order: Any) -> str:
        sites = codings(order.bodySite or [])
        lower = self.terms.in_set("lower-limb-site", sites)
        upper = self.terms.in_set("upper-limb-site", sites)
        if not (lower or upper):
            words = " ".join(
                [
                    concept_text(order.code),
                    concept_text(order.bodySite or []),
                    concept_text(order.orderDetail or []),
                    *(n.text or "" for n in order.note or []),
                ]
            )
            lower, upper = bool(self.lower.search(words)), bool(self.upper.search(words))
            if not (lower or upper) and (
                self.terms.in_set("non-limb-edx", codings(order.code)) or self.non_limb.search(words)
            ):
                return NON_LIMB  # thoracic paraspinals, cranial muscles: not a limb study
            if not (lower or upper):  # a spine region only when no limb is named
                lower, upper = bool(self.lower_region.search(words)), bool(self.upper_region.search(words))
        return BOTH if lower and upper else LOWER if lower else UPPER if upper else UNKNOWN

    def edx_orders(self, call: HookInput) -> list[EdxOrder]:
        drafts = [
            o
            for o in call.draft_orders
            if o.get_resource_type() == "ServiceRequest"
            and o.status in ("draft", "active")
            and self.is_edx(o)
        ]
        in_bundle = {o.id for o in drafts}
        out = []
        for o in drafts:
            siblings = [
                s for s in self._chart_drafts(call) if s.id not in in_bundle and _same_encounter(s, o)
            ]
            family = [*drafts, *siblings]
            limb = self.limb(o)
            if limb == UNKNOWN:
                known = {lb for x in family if x is not o and (lb := self.limb(x)) not in (UNKNOWN, NON_LIMB)}
                if len(known) == 1:
                    limb = next(iter(known))  # a sibling EDX order names the limb
            icd, drop, unresolved = self._diagnoses(o, call)
            needle = any(self.terms.in_set("needle-emg", codings(x.code)) for x in family)
            ncs = self.terms.in_set("ncs", codings(o.code))
            out.append(EdxOrder(o, limb, icd, drop, unresolved, needle, ncs, siblings))
        return out

    def _chart_drafts(self, call: HookInput) -> list[Any]:
        return [s for s in call.of("ServiceRequest") if s.status == "draft" and self.is_edx(s)]

    def _diagnoses(
        self, order: Any, call: HookInput
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        icd = [c for s, c in codings(order.reasonCode or []) if self.terms.system_key(s) == "icd10cm" and c]
        drop, unresolved = [], []
        for ref in order.reasonReference or []:
            target = call.resolve(ref.reference or "", order)
            if target is None:
                unresolved.append(ref.reference or "?")
                continue
            if target.get_resource_type() != "Condition":
                continue
            codes = [c for s, c in codings(target.code) if self.terms.system_key(s) == "icd10cm" and c]
            if not condition_usable(target) or {normalize_code("icd10cm", c) for c in codes} <= self.mismatch:
                drop.append(ref.reference)
            if condition_usable(target):
                icd.extend(codes)
        return tuple(dict.fromkeys(icd)), tuple(drop), tuple(unresolved)

    def is_mismatch(self, icd: tuple[str, ...]) -> bool:
        norm = {normalize_code("icd10cm", c) for c in icd}
        if not norm:
            return False
        if norm == self.mismatch:
            return True
        if not self.extended:
            return False
        return all(self.terms.in_set("no-radiculopathy-dx", [(self.terms.uri["icd10cm"], c)]) for c in icd)

    # -- the hook handlers ---------------------------------------------------------------------------------

    def order_select(self, call: HookInput) -> list[Card]:
        return self.evaluate(call, only=set(call.selections))

    def order_sign(self, call: HookInput) -> list[Card]:
        return self.evaluate(call, only=None)

    def evaluate(self, call: HookInput, only: set[str] | None) -> list[Card]:
        orders = [o for o in self.edx_orders(call) if only is None or f"ServiceRequest/{o.order.id}" in only]
        orders = [o for o in orders if o.limb not in (UPPER, NON_LIMB) and self.is_mismatch(o.icd)]
        if not orders:
            return []
        evidence = self.builder.build(call)
        if evidence.diagnoses.radiculopathy:
            return [self._link_card(orders, evidence)]
        return [self._mismatch_card(orders, evidence, call)]

    # -- cards ------------------------------------------------------------------------------------------

    def _names(self, orders: Iterable[Any]) -> str:
        names = []
        for o in orders:
            code = next((c for s, c in codings(o.code) if self.terms.system_key(s) == "cpt" and c), "")
            name = concept_name(o.code) or "EMG/NCS"
            names.append(f"{name} ({code})" if code and code not in name else name)
        return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]

    def _dx(self, icd: tuple[str, ...]) -> str:
        return "; ".join(f"{c} {self.terms.display('icd10cm', c)}".strip() for c in icd)

    def _update(
        self, o: EdxOrder, reasons: list[dict[str, str]], add_refs: list[str], replace: bool
    ) -> Action:
        """The whole draft order with its new diagnoses (an update carries the resource in its entirety)."""
        resource = resource_json(o.order)
        existing = [] if replace else resource.get("reasonCode", [])
        resource["reasonCode"] = existing + [{"coding": [c], "text": c["display"]} for c in reasons]
        refs = [
            r
            for r in resource.get("reasonReference", [])
            if not replace or r.get("reference") not in o.drop_refs
        ]
        refs += [{"reference": r} for r in add_refs if r not in {x.get("reference") for x in refs}]
        if refs:
            resource["reasonReference"] = refs
        else:
            resource.pop("reasonReference", None)
        codes = ", ".join(c["code"] for c in reasons)
        verb = "Replace the diagnosis with" if replace else "Add"
        return Action(
            type="update", description=f"{verb} {codes} on {self._names([o.order])}", resource=resource
        )

    def _link_card(self, orders: list[EdxOrder], evidence: PatientEvidence) -> Card:
        conditions = evidence.diagnoses.radiculopathy[:3]
        suggestions = []
        for i, cond in enumerate(conditions):
            coding = self._coding(cond)
            actions = [self._update(o, [coding], [cond.ref], replace=False) for o in orders]
            suggestions.append(
                Suggestion(
                    label=f"Add {coding['code']} {coding['display']} to the order",
                    isRecommended=True if i == 0 and len(conditions) > 1 else None,
                    actions=actions,
                )
            )
        first = self._coding(conditions[0])
        spec = self.kit.spec("emg-dx-link")
        # An ICD-10-CM code reads at a glance; a SNOMED CT id does not (the detail gives every display).
        icd = first["system"] == self.terms.uri["icd10cm"]
        summary = spec.summary.format(code=f" ({first['code']})" if icd else "")
        detail = spec.detail.format(
            orders_label="Orders" if len(orders) > 1 else "Order",
            orders=self._names(o.order for o in orders),
            dx=self._dx(orders[0].icd),
            conditions=bullets(f"{c.coded()} ({c.source()})" for c in conditions),
        )
        return self.kit.card("emg-dx-link", "info", detail, suggestions, summary=summary, overrides="link")

    def _coding(self, cond: Evidence) -> dict[str, str]:
        for key in ("icd10cm", "snomed"):
            display = self.terms.display(key, cond.code)
            if display:
                return {"system": self.terms.uri[key], "code": cond.code, "display": display}
        key = "icd10cm" if re.match(r"^[A-Z]\d", cond.code) else "snomed"
        return {"system": self.terms.uri[key], "code": cond.code, "display": cond.display or cond.text}

    def _mismatch_card(self, orders: list[EdxOrder], evidence: PatientEvidence, call: HookInput) -> Card:
        w = self.builder.windows
        quotes = Quotes()
        spec = self.kit.spec("emg-dx-mismatch")
        deficits = evidence.within(evidence.motor.new_deficits, w.new_deficit)
        # An active symptom diagnosis is current by its status; a note's words are current for the window
        # in which new deficits count (an ED visit a year ago does not support today's code).
        symptoms = [
            s
            for s in evidence.diagnoses.radicular_symptoms
            if s.ref.startswith("Condition/") or evidence.within_days(s.when, w.new_deficit)
        ]
        # A study of the arm does not count; one whose limb is not recorded does (the same study is usually
        # reported elsewhere with its limb, and the card's line is a checklist, not a verdict).
        lower_studies = [s for s in evidence.edx.studies if s.limb != UPPER and s.evidence.when]
        recent = [s for s in lower_studies if evidence.within_days(s.evidence.when, w.emg_lookback)]
        recent_needle = [s for s in recent if s.needle]
        needle_in_order = any(o.needle for o in orders)  # in the orders or a draft ordered with them
        needle_here = [o.order for o in orders if self.terms.in_set("needle-emg", codings(o.order.code))]
        judged = {o.order.id for o in orders}
        companions = [  # drafts sent or saved with the judged orders (not selected, or on the chart)
            d
            for d in [*call.draft_orders, *(s for o in orders for s in o.siblings)]
            if d.get_resource_type() == "ServiceRequest"
            and d.id not in judged
            and self.terms.in_set("needle-emg", codings(d.code))
        ]
        mri = [
            m
            for m in evidence.imaging.mri
            if not m.plexus and evidence.within_days(m.evidence.when, w.imaging_lookback)
        ]
        text = spec.text
        older = [s for s in lower_studies if s.needle]
        if needle_here or (needle_in_order and not companions):
            needle = text["needle_in_order"]
        elif needle_in_order:
            needle = text["needle_with_order"].format(orders=self._names(companions[:2]))
        elif recent_needle:
            needle = text["needle_recent"].format(value=recent_needle[0].evidence.source())
        elif older:
            needle = text["needle_old"].format(value=older[0].evidence.source())
        else:
            needle = text["needle_none"]
        notes = []
        if any(o.ncs for o in orders) and not needle_in_order:
            notes.append(spec.text["ncs_only"])
        if recent and not deficits:
            notes.append(spec.text["repeat"].format(value=recent[0].evidence.source()))
        if any(o.limb == UNKNOWN for o in orders):
            notes.append(spec.text["limb_unknown"])
        if any(o.unresolved for o in orders):
            notes.append(spec.text["unresolved"])
        if cut := evidence.cut_short():
            notes.append(spec.text["incomplete"].format(types=cut))
        siblings = [s for o in orders for s in o.siblings]
        if siblings:
            notes.append(spec.text["sibling"].format(orders=self._names(siblings)))
        codes, findings = self._supported_codes(evidence, deficits, symptoms, mri)
        advice = (
            spec.text["supported"].format(findings="; ".join(findings)) if codes else spec.text["unsupported"]
        )
        dx = orders[0].icd
        detail = spec.detail.format(
            orders_label="Orders" if len(orders) > 1 else "Order",
            orders=f"{self._names(o.order for o in orders)} ({_limb_words({o.limb for o in orders})})",
            dx=self._dx(dx),
            symptoms=f"**yes**, {quotes.cite(symptoms[0])}" if symptoms else "**none documented**",
            needle=needle,
            imaging=(
                f"{quotes.cite(mri[0].evidence)} (judge whether it explains the symptoms)"
                if mri
                else "no lumbar MRI within 12 months"
            ),
            deficits=(
                f"**yes**, {'; '.join(f'{e.what} ({e.source()})' for e in deficits[:3])}"
                if deficits
                else "**none documented**"
            ),
            notes="".join(f"\n\n{n}" for n in notes),
            advice=advice,
        )
        summary = spec.summary.format(dx=", ".join(dx) if len(dx) <= 2 else "no-radiculopathy codes")
        return self.kit.card(
            "emg-dx-mismatch", "warning", detail, self._fixes(orders, evidence, call, codes), summary=summary
        )

    def _supported_codes(
        self, evidence: PatientEvidence, deficits: list[Evidence], symptoms: list[Evidence], mri: list[Any]
    ) -> tuple[list[OrderSpec], list[str]]:
        """The diagnosis codes the chart supports, and the findings that support them (named on the card)."""
        findings = []
        if symptoms:
            findings.append(f"radicular symptoms ({symptoms[0].source()})")
        if deficits:
            findings.append(f"{deficits[0].what} ({deficits[0].source()})")
        emg = [r for r in evidence.edx.readings if r.finding.l5_radiculopathy or r.finding.other_roots]
        emg = [r for r in emg if evidence.within_days(r.evidence.when, self.builder.windows.emg_lookback)]
        if emg:
            findings.append(f"radiculopathy on EMG ({emg[0].evidence.source()})")
        compressive = [m for m in mri if m.compressive]
        if compressive:
            findings.append(f"compressive lesion on MRI ({compressive[0].evidence.source()})")
        if not findings:
            return [], []
        # The most specific code the findings support: a disc disorder with radiculopathy when the MRI shows
        # the disc lesion (its level decides lumbar or lumbosacral), else radiculopathy of the region.
        codes = self.policy.diagnosis_codes
        levels = {lv for m in compressive for lv in m.disc_levels}
        out = [
            codes[key]
            for key, level in (("disc_lumbar", "lumbar"), ("disc_lumbosacral", "lumbosacral"))
            if level in levels
        ]
        return out or [codes["radiculopathy"]], findings

    def _deletes(self, orders: list[EdxOrder]) -> list[Action]:
        return [
            Action(
                type="delete",
                description=f"Delete draft {self._names([o.order])}",
                resourceId=f"ServiceRequest/{o.order.id}",
            )
            for o in orders
        ]

    def _fixes(
        self, orders: list[EdxOrder], evidence: PatientEvidence, call: HookInput, codes: list[OrderSpec]
    ) -> list[Suggestion]:
        out: list[Suggestion] = []
        for i, spec in enumerate(codes):
            coding = self.kit.coding(spec)
            out.append(
                Suggestion(
                    label=f"Change the diagnosis to {spec.code} {spec.display}",
                    isRecommended=True if i == 0 else None,
                    actions=[self._update(o, [coding], [], replace=True) for o in orders],
                )
            )
        referrals = []
        for key in ("spine", "pain"):
            spec = self.policy.referrals[key]
            if self.terms.key(self.terms.uri[spec.system], spec.code) in evidence.ordered:
                continue
            reason = OrderSpec(
                system="icd10cm",
                code=orders[0].icd[0],
                display=self.terms.display("icd10cm", orders[0].icd[0]) or orders[0].icd[0],
            )
            resource = self.kit.draft_order(
                spec,
                call.patient_id,
                reason=reason,
                evidence=[m.evidence.ref for m in evidence.imaging.mri[:1]],
            )
            # "Instead" means instead: the referral replaces the EMG/NCS drafts in one choice. No referral is
            # marked recommended: without documented radicular findings the next step is the clinician's.
            label = f"Instead of the EMG/NCS: {spec.display} ({spec.code})"
            referrals.append(
                Suggestion(
                    label=label,
                    actions=[
                        Action(type="create", description=label, resource=resource),
                        *self._deletes(orders),
                    ],
                )
            )
        remove = Suggestion(
            label="Remove the EMG/NCS order" + ("s" if len(orders) > 1 else ""), actions=self._deletes(orders)
        )
        room = self.policy.max_suggestions - len(out) - 1
        return [*out, *referrals[: max(room, 0)], remove]


def _same_encounter(a: Any, b: Any) -> bool:
    ea = a.encounter.reference if a.encounter else None
    eb = b.encounter.reference if b.encounter else None
    if ea and eb:
        return ea == eb
    return bool(a.authoredOn and b.authoredOn and str(a.authoredOn)[:10] == str(b.authoredOn)[:10])


def _limb_words(limbs: set[str]) -> str:
    if limbs <= {LOWER, UNKNOWN}:
        return "lower limb" if LOWER in limbs else "limb not stated"
    return "upper and lower limbs" if BOTH in limbs or limbs >= {LOWER, UPPER} else "lower limb"
