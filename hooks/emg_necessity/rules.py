"""Rule B: lower-limb EMG/NCS orders whose only diagnosis excludes radiculopathy (brief 4.2, issue 4).

A coverage and coding check, not a safety one: the card is a warning at most, shows what the chart
already holds, and offers one-click fixes (change the diagnosis, refer, or remove the order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds.cards import Action, Card, Suggestion
from cds.registry import HookInput
from hooks.common.cardkit import CardKit, bullets
from hooks.common.fhir import codings, concept_name, concept_text, condition_usable, reference, resource_date
from hooks.common.knowledge import normalize_code
from hooks.evidence.builder import EvidenceBuilder, PatientEvidence

LOWER, UPPER, BOTH, UNKNOWN = (
    "lower extremity",
    "upper extremity",
    "upper and lower extremities",
    "limb unknown",
)


@dataclass(frozen=True)
class EdxOrder:
    order: Any
    limb: str
    icd: tuple[str, ...]  # ICD-10-CM codes as written on the order or its usable reason Conditions
    drop_refs: tuple[str, ...]  # reasonReference entries that hold only the mismatched diagnosis
    unresolved: tuple[str, ...]
    needle: bool
    ncs: bool


class EmgNecessityRules:
    def __init__(self, builder: EvidenceBuilder, kit: CardKit) -> None:
        self.builder = builder
        self.terms = builder.terms
        self.kit = kit
        self.cfg = kit.text
        self.text = kit.text["text"]
        self.lower = re.compile(self.cfg["limb_text"]["lower"], re.I)
        self.upper = re.compile(self.cfg["limb_text"]["upper"], re.I)
        self.mismatch = {normalize_code("icd10cm", c) for c in self.cfg["mismatch_codes"]}
        self.extended = self.cfg.get("mode") == "extended"

    # -- classification of draft orders -------------------------------------------------------------

    def _limb(self, order: Any) -> str:
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
        return BOTH if lower and upper else LOWER if lower else UPPER if upper else UNKNOWN

    def _is_edx(self, order: Any) -> bool:
        return self.terms.in_set("edx-procedure", codings(order.code)) or bool(
            self.builder.edx_text.search(concept_text(order.code))
        )

    def edx_orders(self, inp: HookInput) -> list[EdxOrder]:
        drafts = [
            o
            for o in inp.draft_orders
            if o.get_resource_type() == "ServiceRequest"
            and o.status in ("draft", "active")
            and self._is_edx(o)
        ]
        limbs = {o.id: self._limb(o) for o in drafts}
        known = {limb for limb in limbs.values() if limb != UNKNOWN}
        bundle_needle = any(self.terms.in_set("needle-emg", codings(o.code)) for o in drafts)
        out = []
        for o in drafts:
            limb = limbs[o.id]
            if limb == UNKNOWN and len(known) == 1:
                limb = next(iter(known))  # a sibling EDX order in the same bundle names the limb
            icd, drop, unresolved = self._diagnoses(o, inp)
            pairs = codings(o.code)
            out.append(
                EdxOrder(
                    o, limb, icd, drop, unresolved, needle=bundle_needle, ncs=self.terms.in_set("ncs", pairs)
                )
            )
        return out

    def _diagnoses(
        self, order: Any, inp: HookInput
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        icd = [c for s, c in codings(order.reasonCode or []) if self.terms.system_key(s) == "icd10cm" and c]
        drop, unresolved = [], []
        for ref in order.reasonReference or []:
            target = inp.resolve(ref.reference or "")
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

    def _is_mismatch(self, icd: tuple[str, ...]) -> bool:
        norm = {normalize_code("icd10cm", c) for c in icd}
        if not norm:
            return False
        if norm == self.mismatch:
            return True
        if not self.extended:
            return False
        pairs = [(self.terms.uri["icd10cm"], c) for c in icd]
        return all(self.terms.in_set("no-radiculopathy-dx", [p]) for p in pairs)

    # -- the hook handlers ---------------------------------------------------------------------------------

    def order_select(self, inp: HookInput) -> list[Card]:
        return self.evaluate(inp, only=set(inp.selections))

    def order_sign(self, inp: HookInput) -> list[Card]:
        return self.evaluate(inp, only=None)

    def evaluate(self, inp: HookInput, only: set[str] | None) -> list[Card]:
        orders = [o for o in self.edx_orders(inp) if only is None or f"ServiceRequest/{o.order.id}" in only]
        orders = [o for o in orders if o.limb != UPPER and self._is_mismatch(o.icd)]
        if not orders:
            return []
        ev = self.builder.build(inp.resources, inp.now.date(), inp.draft_orders)
        cards = []
        for o in orders:
            cards.append(self._link_card(o, ev) if ev.radic_conditions else self._mismatch_card(o, ev, inp))
        return cards

    # -- cards ------------------------------------------------------------------------------------------

    def _order_name(self, o: EdxOrder) -> str:
        """The draft order is the evidence that fired the card: name it with its codes and date."""
        codes = ", ".join(c for _, c in codings(o.order.code) if c)
        name = concept_name(o.order.code) or "EMG/NCS"
        when = resource_date(o.order)
        return f"{name}{f' [{codes}]' if codes else ''} — {reference(o.order)} ({when or 'undated'})"

    def _updated(
        self, o: EdxOrder, reason_codes: list[dict[str, Any]], add_refs: list[str] = (), replace: bool = True
    ) -> dict[str, Any]:
        resource = o.order.model_dump(mode="json", exclude_none=True, by_alias=True)
        existing = [] if replace else resource.get("reasonCode", [])
        resource["reasonCode"] = existing + [
            {"coding": [c], "text": c.get("display", c["code"])} for c in reason_codes
        ]
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
        return resource

    def _link_card(self, o: EdxOrder, ev: PatientEvidence) -> Card:
        conds = ev.radic_conditions
        suggestions = []
        for i, cond in enumerate(conds[:4]):
            code = cond.code
            coding = self._coding_for(code)
            resource = self._updated(o, [coding], add_refs=[cond.ref], replace=False)
            suggestions.append(
                Suggestion(
                    label=f"Add {code} ({cond.text or 'radiculopathy'}) to the order's diagnoses",
                    isRecommended=(i == 0) if len(conds) > 1 else None,
                    actions=[
                        Action(
                            type="update",
                            description=f"Add {code} to ServiceRequest/{o.order.id} reasons",
                            resource=resource,
                        )
                    ],
                )
            )
        first = conds[0].code
        detail = self.text["link_detail"].format(
            order=self._order_name(o), dx_list=", ".join(o.icd), conditions=bullets(conds)
        )
        return self.kit.card(
            "emg-dx-link",
            "info",
            self.text["link_summary"].format(code=first)[:139],
            detail,
            "policy",
            suggestions,
            overrides="link_override_reasons",
        )

    def _coding_for(self, code: str) -> dict[str, str]:
        for system_key in ("icd10cm", "snomed"):
            display = self.terms.display(system_key, code)
            if display:
                return {"system": self.terms.uri[system_key], "code": code, "display": display}
        system_key = "icd10cm" if re.match(r"^[A-Z]\d", code) else "snomed"
        return {"system": self.terms.uri[system_key], "code": code}

    def _mismatch_card(self, o: EdxOrder, ev: PatientEvidence, inp: HookInput) -> Card:
        windows = self.builder.windows
        year = windows["emg_lookback"]
        deficits = ev.within(ev.new_deficits, windows["new_deficit"])
        symptoms = ev.radicular_symptoms
        prior = [s for s in ev.edx_studies if s.needle and s.evidence.when]
        recent_prior = [s for s in prior if 0 <= (ev.now - s.evidence.when).days <= year]
        any_recent = [
            s for s in ev.edx_studies if s.evidence.when and 0 <= (ev.now - s.evidence.when).days <= year
        ]
        mri = [
            m
            for m in ev.mri
            if m.evidence.when and 0 <= (ev.now - m.evidence.when).days <= windows["imaging_lookback"]
        ]
        crit = self.text["criteria"]
        last = f"; last needle EMG on file {prior[0].evidence.cite()}" if prior else ""
        if o.needle:
            needle = f"**yes**, needle EMG is part of this order{last}"
        elif recent_prior:
            needle = f"**yes**, {recent_prior[0].evidence.cite()}"
        elif prior:
            needle = f"**not met**: last needle EMG {prior[0].evidence.when.isoformat()}, over 12 months ago"
        else:
            needle = "**not met**: no needle EMG in this order or on file"
        lines = [
            crit["symptoms"].format(
                value=f"**yes**, {symptoms[0].cite()}" if symptoms else "**not documented**"
            ),
            crit["needle"].format(value=needle),
            crit["imaging"].format(
                value=f"{mri[0].evidence.cite(300)} (judge whether it explains the symptoms)"
                if mri
                else "none on file"
            ),
            crit["deficits"].format(
                value=("**yes**\n" + _indent(bullets(deficits, 4))) if deficits else "**none documented**"
            ),
        ]
        dx = ", ".join(o.icd)
        display = self.terms.display("icd10cm", o.icd[0]) or dx
        parts = [
            self.text["mismatch_intro"].format(
                order=self._order_name(o),
                limb=o.limb,
                dx_list=dx,
                dx_display=f"{o.icd[0]} ({display})" if len(o.icd) == 1 else dx,
            ),
            "\n".join(f"- {line}" for line in lines),
        ]
        if o.ncs and not o.needle:
            parts.append(self.text["ncs_only"])
        if any_recent and not deficits:
            parts.append(self.text["repeat"].format(value=any_recent[0].evidence.cite()))
        if o.limb == UNKNOWN:
            parts.append(self.text["limb_unknown"])
        if o.unresolved:
            parts.append(self.text["unresolved"].format(refs=", ".join(o.unresolved)))
        parts.append(self.text["fixes"])
        summary = self.text["mismatch_summary"].format(dx=dx if len(o.icd) == 1 else "no-radiculopathy codes")
        return self.kit.card(
            "emg-dx-mismatch",
            "warning",
            summary[:139],
            "\n\n".join(p.strip() for p in parts),
            "policy",
            self._fixes(o, ev, inp, bool(deficits or symptoms)),
        )

    def _fixes(self, o: EdxOrder, ev: PatientEvidence, inp: HookInput, supported: bool) -> list[Suggestion]:
        candidates = self.cfg["candidate_codes"]
        on_chart = {normalize_code("icd10cm", e.code) for e in ev.symptom_conditions}
        recommended = next(
            (c["code"] for c in candidates if normalize_code("icd10cm", c["code"]) in on_chart),
            self.cfg["default_recommended"],
        )
        out = []
        for cand in candidates:
            coding = self.kit.coding(cand)
            out.append(
                Suggestion(
                    label=f"Change the order's diagnosis to {cand['code']} {cand['display']}",
                    isRecommended=supported and cand["code"] == recommended,
                    actions=[
                        Action(
                            type="update",
                            description=f"Replace the diagnosis of ServiceRequest/{o.order.id} "
                            f"with {cand['code']}",
                            resource=self._updated(o, [coding]),
                        )
                    ],
                )
            )
        refs = [reference(o.order)]
        for key in ("spine", "pain"):
            spec = self.cfg["referrals"][key]
            label = f"Instead: {spec['display']} ({spec['code']})"
            if self.terms.key(self.terms.uri[spec["system"]], spec["code"]) in ev.ordered:
                continue
            reason = {
                "system": "icd10cm",
                "code": o.icd[0],
                "display": self.terms.display("icd10cm", o.icd[0]),
            }
            resource = self.kit.draft_order(
                spec, inp.patient_id, reason=reason, evidence=[m.evidence.ref for m in ev.mri[:1]]
            )
            out.append(self.kit.create(label, resource))
        out.append(
            Suggestion(
                label="Remove this EMG/NCS order",
                actions=[Action(type="delete", description=f"Delete draft {refs[0]}", resourceId=refs[0])],
            )
        )
        return out


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
