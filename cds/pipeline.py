"""The one-directional pipeline: request -> prefetch or FHIR fetch -> typed input -> handler -> response.

`Engine.evaluate` is shared by the HTTP endpoint and the offline `cds evaluate` command, so what
the CLI prints is exactly what an EHR would receive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cds import metrics
from cds.card_ids import CardIds
from cds.cards import Card, Response
from cds.client_trust import Caller
from cds.config import Settings
from cds.fhir import Deadline, FetchResult, FhirClient, same_origin
from cds.logs import IdHasher, log
from cds.netguard import NetGuard
from cds.parse import ModelCache, parse_one, parse_resources
from cds.prefetch import Status, classify, render
from cds.registry import HookInput, Service
from cds.request import HookError, HookRequest, parse_hook_request

logger = logging.getLogger("cds.hook")
_REF_PREFIX = "urn:uuid:"


@dataclass
class Gathered:
    raws: list[dict[str, Any]] = field(default_factory=list)
    prefetch_status: dict[str, str] = field(default_factory=dict)
    fhir_calls: int = 0
    fhir_ms: float = 0.0
    unresolved: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    body: dict[str, Any]
    cards: list[Card]
    request: HookRequest


def _references(orders: Iterable[dict[str, Any]], fields: Iterable[str]) -> list[str]:
    refs = []
    for order in orders:
        for name in fields:
            value = order.get(name)
            for item in value if isinstance(value, list) else [value]:
                ref = item.get("reference") if isinstance(item, dict) else None
                if isinstance(ref, str) and "/" in ref and not ref.startswith(("http", _REF_PREFIX, "#")):
                    refs.append(ref)
    return refs


def resource_count(request: HookRequest) -> tuple[int, int]:
    """(resources in prefetch, entries of context.draftOrders), counted on the raw JSON: every entry counts,
    including any the validation chose to ignore."""
    prefetched = sum(
        len(v.get("entry") or []) if v.get("resourceType") == "Bundle" else 1
        for v in request.prefetch.values()
        if isinstance(v, dict)
    )
    drafts = request.context.get("draftOrders")
    entries = drafts.get("entry") if isinstance(drafts, dict) else None
    return prefetched, len(entries) if isinstance(entries, list) else 0


class Engine:
    def __init__(
        self, settings: Settings, fhir: FhirClient, hasher: IdHasher, guard: NetGuard, card_ids: CardIds
    ) -> None:
        self.settings = settings
        self.fhir = fhir
        self.hasher = hasher
        self.guard = guard
        self.card_ids = card_ids  # signed card uuids: feedback knows a served card without the audit
        self.models = ModelCache(settings.parse_cache_entries)

    def now(self) -> datetime:
        return self.settings.clock or datetime.now(UTC)

    def evaluate(self, service: Service, body: Any, caller: Caller | None = None) -> Outcome:
        """`caller` is the authenticated CDS client (None when auth is off)."""
        started = time.perf_counter()
        request = parse_hook_request(body, service.hook, require_https=self.settings.profile == "prod")
        fields: dict[str, Any] = {"hookInstance": request.hook_instance, "service": service.id}
        try:
            self.check_fhir_server(request, caller)
            self.check_prefetch_size(request)
            gathered = self.gather(service, request, Deadline(self.settings.fhir_deadline_s))
            fields.update(
                prefetch=gathered.prefetch_status,
                fhir_calls=gathered.fhir_calls,
                fhir_ms=round(gathered.fhir_ms, 1),
            )
            hook_input = self.build_input(service, request, gathered)
            cards = list(service.handler(hook_input))
            for card in cards:
                card.uuid = self.card_ids.new()
            undeclared = service.undeclared(cards)
            if undeclared:  # a rule the service does not declare: a bug, never shown to a clinician
                log(logger, logging.ERROR, "hook.undeclared_rule", service=service.id, cards=undeclared)
                raise RuntimeError(f"{service.id} returned undeclared rules {undeclared}")
            body_out = Response(cards=cards).to_json()
        except HookError as err:
            log(
                logger,
                logging.WARNING,
                "hook.rejected",
                status=err.status,
                reason=err.code,
                **fields,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            metrics.observe_hook(service.id, service.hook, time.perf_counter() - started, outcome="rejected")
            raise
        log(
            logger,
            logging.INFO,
            "hook.call",
            status=200,
            **fields,
            patient=self.hasher(request.patient_id),
            cards=len(cards),
            rules=[c.rule for c in cards],
            indicators=[c.indicator for c in cards],
            skipped_invalid=dict(hook_input.skipped),
            unresolved=len(gathered.unresolved),
            degraded=gathered.degraded,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        metrics.observe_hook(
            service.id,
            service.hook,
            time.perf_counter() - started,
            prefetch_status=gathered.prefetch_status,
            cards=cards,
        )
        return Outcome(body_out, cards, request)

    # -- stage 2: prefetch or FHIR fetch ---------------------------------------------------------

    def check_fhir_server(self, request: HookRequest, caller: Caller | None) -> None:
        """Refuse a fhirServer we must never send a token to, before anything is fetched."""
        url = request.fhir_server
        if url is None:
            return
        if caller is not None and not caller.client.allows_fhir_server(url):
            raise HookError(
                400, "fhirServer is not a FHIR server of the authenticated client", "fhir-server-refused"
            )
        reason = self.guard.refuse(url)
        if reason:
            raise HookError(400, f"fhirServer refused: {reason}", "fhir-server-refused")

    def check_prefetch_size(self, request: HookRequest) -> None:
        """413 when prefetch and draftOrders together hold more resources than the cap: each one is parsed
        and read, so the cap bounds a call's work whichever of the two carries them."""
        prefetched, drafts = resource_count(request)
        limit = self.settings.max_prefetch_resources
        if prefetched + drafts > limit:
            held = f"prefetch holds {prefetched} resources" + (f" and draftOrders {drafts}" if drafts else "")
            raise HookError(413, f"{held}; the limit is {limit}", "prefetch-too-large")

    def gather(self, service: Service, request: HookRequest, deadline: Deadline) -> Gathered:
        out = Gathered()
        queries: dict[str, str] = {}
        pages: dict[str, str] = {}
        for key, template in service.prefetch.items():
            value = classify(key, request.prefetch)
            out.prefetch_status[key] = value.reason or value.status.value
            if value.status is Status.DATA:
                out.raws.extend(value.resources)
                if value.next_url:
                    pages[key] = value.next_url
                    out.prefetch_status[key] = "paged"
            elif value.status is Status.MISSING:
                query = render(template, request.context)
                if query is None:
                    out.prefetch_status[key] = "no-token-value"
                else:
                    queries[key] = query
        known = {f"{r.get('resourceType')}/{r.get('id')}" for r in [*out.raws, *request.draft_orders]}
        reads = {
            f"ref:{ref}": ref
            for ref in dict.fromkeys(_references(request.draft_orders, service.resolve_references))
            if ref not in known
        }
        if not (queries or pages or reads):
            return out
        for key, url in list(pages.items()):
            if not request.fhir_server or not same_origin(url, request.fhir_server):
                log(
                    logger,
                    logging.WARNING,
                    "prefetch.next_link_refused",
                    key=key,
                    reason="not the fhirServer",
                )
                pages.pop(key)
                out.degraded.append(key)
        if not (queries or pages or reads):
            return out
        if not request.fhir_server:
            if queries:
                raise HookError(
                    412,
                    f"prefetch for {', '.join(sorted(queries))} is missing and no fhirServer was given",
                    code="prefetch-missing",
                )
            out.unresolved.extend(reads.values())
            return out
        token = request.fhir_authorization.access_token if request.fhir_authorization else None
        fetch_started = time.perf_counter()
        results = self.fhir.fetch_all(
            request.fhir_server, {**queries, **reads}, token=token, deadline=deadline, next_urls=pages
        )
        out.fhir_ms = (time.perf_counter() - fetch_started) * 1000
        self._merge(service, results, queries, reads, out)
        return out

    def _merge(
        self,
        service: Service,
        results: dict[str, FetchResult],
        queries: dict[str, str],
        reads: dict[str, str],
        out: Gathered,
    ) -> None:
        if any(r.error == "forbidden-address" for r in results.values()):
            raise HookError(
                400, "fhirServer refused: it resolves to a forbidden address", "fhir-server-refused"
            )
        failed = []
        for key, result in results.items():
            out.fhir_calls += result.calls
            out.raws.extend(result.resources)
            if key in queries:
                out.prefetch_status[key] = f"fetched:{result.error}" if result.error else "fetched"
            if result.ok:
                continue
            if key in reads:
                out.unresolved.append(reads[key])
            elif key in queries and key not in service.optional_prefetch:
                failed.append(f"{key} ({result.error})")
            else:
                out.degraded.append(key)
        if failed:
            raise HookError(
                412,
                f"could not obtain required data from the FHIR server: {', '.join(sorted(failed))}",
                code="fhir-unavailable",
            )

    # -- stage 3: typed input ----------------------------------------------------------------------

    def build_input(self, service: Service, request: HookRequest, gathered: Gathered) -> HookInput:
        referenced = frozenset(_references(request.draft_orders, service.resolve_references))
        resources, skipped, _ = parse_resources(
            gathered.raws, service.relevant, request.patient_id, referenced, self.models
        )
        orders = []
        for raw in request.draft_orders:
            model = parse_one(raw, request.patient_id)
            if model is None:
                skipped[f"draft:{raw.get('resourceType')}"] += 1
            else:
                orders.append(model)
        return HookInput(
            hook=request.hook,
            hook_instance=request.hook_instance,
            patient_id=request.patient_id,
            user_id=request.context["userId"],
            now=self.now(),
            context=request.context,
            resources=resources,
            draft_orders=orders,
            selections=request.selections,
            skipped=dict(skipped),
            unresolved=tuple(gathered.unresolved),
        )
