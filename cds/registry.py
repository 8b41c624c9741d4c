"""Service declarations and the registry that turns them into discovery.

A clinical service is one `Service(...)` value: id, hook, title, description, prefetch, the rules
it may fire (each with its card indicators) and a handler that maps typed evidence (`HookInput`)
to cards. Everything else (validation, prefetch resolution, FHIR fallback, parsing,
serialization) is the engine's job. The rule declarations are the one catalogue that tests,
fixtures, benchmarks and documentation read rule ids from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from cds.cards import Card
from cds.prefetch import check_template

SUPPORTED_HOOKS = ("patient-view", "order-select", "order-sign")


@dataclass(frozen=True)
class HookInput:
    """What a handler sees: the validated context plus parsed FHIR resources, nothing transport-level."""

    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    now: datetime
    context: Mapping[str, Any]
    resources: Mapping[str, list[Any]]  # resourceType -> parsed fhir.resources models, de-duplicated
    draft_orders: list[Any] = field(default_factory=list)  # parsed resources of context.draftOrders
    selections: tuple[str, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)  # resourceType -> invalid resources skipped
    unresolved: tuple[str, ...] = ()  # references of draft orders that no source could resolve
    draft_extras: list[Any] = field(default_factory=list)  # non-order resources sent in draftOrders
    other_patient: Mapping[str, int] = field(default_factory=dict)  # dropped: about another patient
    incomplete: tuple[str, ...] = ()  # resource types whose search was cut short ("none on file" is unsure)

    def of(self, resource_type: str) -> list[Any]:
        return list(self.resources.get(resource_type, []))

    def resolve(self, reference: str, container: Any = None) -> Any | None:
        """Find a referenced resource: `#id` in `container.contained`, else 'Type/id' (or an absolute URL
        ending in it) among draft orders, other draftOrders entries and fetched resources."""
        if reference.startswith("#"):
            return next(
                (c for c in getattr(container, "contained", None) or [] if c.id == reference[1:]), None
            )
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) < 2:
            return None
        return self._by_reference.get((parts[-2], parts[-1]))

    @cached_property
    def _by_reference(self) -> dict[tuple[str, str], Any]:
        """(type, id) -> the first draft order, other draftOrders entry, else fetched resource with it.
        Built once per call: a scan per reference cost orders x references (20,000 draft orders: 53 s)."""
        index: dict[tuple[str, str], Any] = {}
        for res in [*self.draft_orders, *self.draft_extras]:
            index.setdefault((res.get_resource_type(), res.id), res)
        for rtype, items in self.resources.items():
            for res in items:
                index.setdefault((rtype, res.id), res)
        return index


Handler = Callable[[HookInput], list[Card]]
RawFilter = Callable[[dict[str, Any]], bool]
# (raw resource, today) -> read its attachments? Asked only for resources `relevant` keeps.
AttachmentFilter = Callable[[dict[str, Any], date], bool]
INDICATORS = ("info", "warning", "critical")


@dataclass(frozen=True)
class Rule:
    """A rule a service may fire: its id (the card's `source.topic.code`) and the indicators it may use."""

    id: str
    indicators: tuple[str, ...]
    title: str = ""

    def __post_init__(self) -> None:
        if not self.indicators or set(self.indicators) - set(INDICATORS):
            raise ValueError(f"rule {self.id}: indicators must be among {INDICATORS}")


@dataclass(frozen=True)
class Service:
    """One CDS service. `relevant` pre-filters raw JSON so only resources a rule can use get parsed."""

    id: str
    hook: str
    title: str
    description: str
    handler: Handler
    prefetch: Mapping[str, str] = field(default_factory=dict)
    usage_requirements: str | None = None
    relevant: RawFilter | None = None
    # Which kept DiagnosticReports/DocumentReferences have their attachments fetched and read (e.g. only
    # notes within the rules' windows); None: every one that `relevant` keeps.
    wants_attachments: AttachmentFilter | None = None
    # Reference fields of draft orders that the engine resolves (bundle, prefetch, then FHIR read).
    resolve_references: tuple[str, ...] = ()
    # Prefetch keys whose fetch failure degrades the answer (logged) instead of returning 412.
    optional_prefetch: frozenset[str] = frozenset()
    rules: tuple[Rule, ...] = ()  # every rule the handler may fire; empty = undeclared (test services)
    knowledge: Mapping[str, str] = field(default_factory=dict)  # knowledge file -> version (for /readyz)
    # Suppression (cds.suppression), a site setting kept in the knowledge files: override reason code ->
    # days the same rule stays silent for the patient; days an accepted order suggestion silences it (until
    # the chart shows the order); rule ids that are never silenced. Empty: feedback silences nothing.
    suppress_after: Mapping[str, int] = field(default_factory=dict)
    suppress_accepted_days: int | None = None
    never_suppress: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.hook not in SUPPORTED_HOOKS:
            raise ValueError(f"service {self.id}: unsupported hook {self.hook}")
        for key, template in self.prefetch.items():
            check_template(key, template)
        unknown = set(self.optional_prefetch) - set(self.prefetch)
        if unknown:
            raise ValueError(f"service {self.id}: optional_prefetch names unknown keys {sorted(unknown)}")
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"service {self.id}: a rule id is declared twice")
        periods = [*self.suppress_after.values(), self.suppress_accepted_days or 0]
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in periods):
            raise ValueError(f"service {self.id}: suppression periods are whole days, zero or more")
        if self.rules and set(self.never_suppress) - set(ids):
            unknown = sorted(set(self.never_suppress) - set(ids))
            raise ValueError(f"service {self.id}: never_suppress names undeclared rules {unknown}")

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def undeclared(self, cards: list[Card]) -> list[str]:
        """Cards whose rule or indicator the declaration does not allow (a programming error)."""
        if not self.rules:
            return []
        out = []
        for card in cards:
            rule = self.rule(card.rule or "")
            if rule is None or card.indicator not in rule.indicators:
                out.append(f"{card.rule}/{card.indicator}")
        return out

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


class Registry:
    def __init__(self, services: Iterable[Service] = ()) -> None:
        self._services: dict[str, Service] = {}
        for svc in services:
            self.add(svc)

    def add(self, service: Service) -> None:
        if service.id in self._services:
            raise ValueError(f"duplicate service id {service.id}")
        self._services[service.id] = service

    def get(self, service_id: str) -> Service | None:
        return self._services.get(service_id)

    def __iter__(self):
        return iter(self._services.values())

    def __len__(self) -> int:
        return len(self._services)

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self._services.values()]}

    def knowledge(self) -> dict[str, str]:
        """Versions of every knowledge file the services were built from."""
        return {path: version for s in self._services.values() for path, version in s.knowledge.items()}
