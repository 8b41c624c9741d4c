"""Card-building helpers shared by the clinical services: sources, override reasons and draft orders.

Suggested orders are complete draft ServiceRequests (status draft, intent order, subject, coded
reason, reasonReference to the evidence) so an EHR can accept them with one click.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cds.cards import Action, Card, Coding, Source, Suggestion
from hooks.common.knowledge import Terminology
from hooks.evidence.builder import Evidence


def bullets(items: Iterable[Evidence], limit: int = 5) -> str:
    items = list(items)
    lines = [f"- {e.cite()}" for e in items[:limit]]
    if len(items) > limit:
        lines.append(f"- … and {len(items) - limit} more")
    return "\n".join(lines) or "- none documented"


class CardKit:
    def __init__(self, terms: Terminology, text: dict[str, Any]) -> None:
        self.terms = terms
        self.text = text
        self.rule_system: str = text["rule_system"]
        self.override_system: str = text.get("override_system", "urn:spine-cds:override-reason")

    def source(self, key: str, rule: str) -> Source:
        spec = self.text["sources"][key]
        return Source(
            label=spec["label"],
            url=spec.get("url"),
            topic=Coding(system=self.rule_system, code=rule, display=rule.replace("-", " ")),
        )

    def override_reasons(self, key: str = "override_reasons") -> list[Coding]:
        return [
            Coding(system=self.override_system, code=r["code"], display=r["display"]) for r in self.text[key]
        ]

    def coding(self, spec: dict[str, str]) -> dict[str, str]:
        out = {"system": self.terms.uri[spec["system"]], "code": spec["code"]}
        if spec.get("display"):
            out["display"] = spec["display"]
        return out

    def draft_order(
        self,
        spec: dict[str, str],
        patient_id: str,
        *,
        reason: dict[str, str] | None = None,
        evidence: Iterable[str] = (),
        priority: str = "routine",
        note: str | None = None,
    ) -> dict[str, Any]:
        order: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "priority": priority,
            "code": {"coding": [self.coding(spec)], "text": spec.get("display", spec["code"])},
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if reason:
            order["reasonCode"] = [
                {"coding": [self.coding(reason)], "text": reason.get("display", reason["code"])}
            ]
        refs = [r for r in dict.fromkeys(evidence) if "/" in r]
        if refs:
            order["reasonReference"] = [{"reference": r} for r in refs]
        if note:
            order["note"] = [{"text": note}]
        return order

    def create(self, label: str, resource: dict[str, Any], *, recommended: bool | None = None) -> Suggestion:
        return Suggestion(
            label=label,
            isRecommended=recommended,
            actions=[Action(type="create", description=label, resource=resource)],
        )

    def card(
        self,
        rule: str,
        indicator: str,
        summary: str,
        detail: str,
        source_key: str,
        suggestions: list[Suggestion] | None = None,
        overrides: str | None = "override_reasons",
        selection: str = "at-most-one",
    ) -> Card:
        suggestions = suggestions or []
        return Card(
            summary=summary,
            indicator=indicator,
            detail=detail.strip(),
            source=self.source(source_key, rule),
            suggestions=suggestions,
            selectionBehavior=selection if suggestions else None,
            overrideReasons=self.override_reasons(overrides) if overrides else [],
        )
