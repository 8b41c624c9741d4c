"""Card-building shared by the clinical services: one card-text shape, sources and links, draft orders.

Every service's `cards.yaml` has the same shape (`CardsFile`): card text keyed by rule id, the sources
and links the cards cite, the orders they may suggest and the override reasons they offer. Suggested
orders are complete draft ServiceRequests (status draft, intent order, subject, coded reason with its
display, reasonReference to the evidence) so an EHR can accept them with one click.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cds.cards import Action, Card, Coding, Link, Source, Suggestion
from hooks.common.knowledge import Terminology
from hooks.common.schema import KnowledgeFile, Strict
from hooks.common.suppression import SuppressionSpec
from hooks.evidence.model import Evidence


class SourceSpec(Strict):
    label: str
    url: str


class OrderSpec(Strict):
    system: str  # a system key of valuesets.yaml
    code: str
    display: str


class ReasonSpec(Strict):
    code: str
    display: str


class RuleDoc(Strict):
    """What a CDS committee reads about the rule (docs/clinical-rules.md is generated from it)."""

    trigger: str  # when the rule fires, in words
    evidence: list[str]  # what it reads from the chart
    windows: list[str] = []  # keys of knowledge/windows.yaml it uses (checked)
    orders: list[str] = []  # keys of `orders` it may suggest (checked)
    suggests: list[str] = []  # other suggestions, in words
    tuning: list[str] = []  # knowledge files and keys that change its behaviour


class CardText(Strict):
    enabled: bool = True  # a site may switch a card off (the rule then stays silent)
    doc: RuleDoc | None = None
    summary: str
    detail: str
    source: str  # a key of `sources`: the guideline or policy the card follows
    links: list[str] = []  # more keys of `sources` to link (the source is always linked)
    text: dict[str, str] = {}  # named fragments the rule adds when they apply


class CardsFile(KnowledgeFile):
    rule_system: str
    sources: dict[str, SourceSpec]
    orders: dict[str, OrderSpec] = {}
    reason_code: OrderSpec | None = None
    override_system: str
    override_reasons: dict[str, list[ReasonSpec]]
    cards: dict[str, CardText]
    policy: dict[str, Any] = {}  # service-specific settings (the EMG/NCS payer policy pack)
    suppression: SuppressionSpec = SuppressionSpec()  # how long feedback silences a rule (cds.suppression)


def bullets(items: Iterable[str]) -> str:
    """A flat CommonMark list (never a list pasted inside a list item)."""
    return "\n".join(f"- {line}" for line in items)


@dataclass
class Quotes:
    """A sentence is quoted once per response; later cards name the document and date only."""

    seen: set[tuple[str, str]] = field(default_factory=set)

    def cite(self, e: Evidence, short: str = "") -> str:
        key = (e.ref, e.text)
        if key in self.seen or not e.text:
            return f"{e.source()}{': ' + short if short else ''}"
        self.seen.add(key)
        return e.cite()


class CardKit:
    def __init__(self, terms: Terminology, text: CardsFile, titles: dict[str, str] | None = None) -> None:
        self.terms = terms
        self.text = text
        # The rule's title names it to people (clients show topic.display, e.g. "Type: ..."); its id is
        # for machines and the audit.
        self.titles = titles or {}
        for spec in text.cards.values():
            for key in [spec.source, *spec.links]:
                if key not in text.sources:
                    raise KeyError(f"card source {key!r} is not in sources")

    def spec(self, rule: str) -> CardText:
        return self.text.cards[rule]

    def coding(self, spec: OrderSpec | dict[str, str]) -> dict[str, str]:
        if isinstance(spec, dict):
            spec = OrderSpec(**spec)
        return {"system": self.terms.uri[spec.system], "code": spec.code, "display": spec.display}

    def order(self, key: str) -> OrderSpec:
        return self.text.orders[key]

    def ordered(self, key: str, ordered: set[tuple[str, str]]) -> bool:
        spec = self.text.orders[key]
        return self.terms.key(self.terms.uri[spec.system], spec.code) in ordered

    def draft_order(
        self,
        spec: OrderSpec,
        patient_id: str,
        *,
        reason: OrderSpec | None = None,
        evidence: Iterable[str] = (),
        priority: str = "routine",
    ) -> dict[str, Any]:
        order: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "priority": priority,
            "code": {"coding": [self.coding(spec)], "text": spec.display},
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if reason:
            order["reasonCode"] = [{"coding": [self.coding(reason)], "text": reason.display}]
        refs = [r for r in dict.fromkeys(evidence) if "/" in r and not r.startswith("#")]
        if refs:
            order["reasonReference"] = [{"reference": r} for r in refs]
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
        detail: str,
        suggestions: list[Suggestion] | None = None,
        *,
        summary: str | None = None,
        overrides: str | None = "default",
        selection: str = "at-most-one",
    ) -> Card:
        spec = self.spec(rule)
        source = self.text.sources[spec.source]
        suggestions = suggestions or []
        links = [
            Link(label=self.text.sources[key].label, url=self.text.sources[key].url, type="absolute")
            for key in dict.fromkeys([spec.source, *spec.links])
        ]
        return Card(
            summary=summary or spec.summary,
            indicator=indicator,
            detail=detail.strip(),
            source=Source(
                label=source.label,
                url=source.url,
                topic=Coding(
                    system=self.text.rule_system,
                    code=rule,
                    display=self.titles.get(rule, rule.replace("-", " ")),
                ),
            ),
            suggestions=suggestions,
            selectionBehavior=selection if suggestions else None,
            overrideReasons=[
                Coding(system=self.text.override_system, code=r.code, display=r.display)
                for r in self.text.override_reasons.get(overrides or "", [])
            ],
            links=links,
        )
