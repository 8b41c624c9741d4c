"""The one-directional pipeline: request -> prefetch or FHIR fetch -> attachments as text -> typed input
-> handler -> response.

`Engine.evaluate` is shared by the HTTP endpoint and the offline `cds evaluate` command, so what
the CLI prints is exactly what an EHR would receive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from cds import metrics
from cds.attachments import AttachmentStage, keep_for
from cds.card_ids import CardIds
from cds.cards import Card, Response
from cds.client_trust import Caller
from cds.config import Settings
from cds.fhir import Deadline, FetchResult, FhirClient, same_origin
from cds.logs import IdHasher, log
from cds.netguard import NetGuard
from cds.parse import ModelCache, dedupe, other_patient, parse_cached, parse_resources
from cds.prefetch import Status, classify, render, template_type
from cds.registry import HookInput, Service
from cds.request import HookError, HookRequest, parse_hook_request
from cds.suppression import Suppressor, Withheld

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
    attachments: dict[str, int] = field(default_factory=dict)
    incomplete: set[str] = field(default_factory=set)  # resource types whose data is partial (truncated)


@dataclass
class Outcome:
    body: dict[str, Any]
    cards: list[Card]
    request: HookRequest
    withheld: list[Withheld] = field(default_factory=list)  # cards feedback silences (cds.suppression)
    patient: str = ""  # the keyed hash of the patient, scoped to the calling EHR (audit and suppression)


def _claimed_instance(body: Any) -> str | None:
    """The hookInstance a body claims, for log correlation before it is validated (a string, bounded)."""
    value = body.get("hookInstance") if isinstance(body, dict) else None
    return value[:64] if isinstance(value, str) else None


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
        self.attachments = AttachmentStage(settings, fhir)
        # Set by create_app when a store is configured; None (the offline `cds evaluate`) shows every card.
        self.suppressor: Suppressor | None = None

    @property
    def zone(self) -> tzinfo:
        return self.settings.zone

    def now(self) -> datetime:
        """The hook's clock, in the site's zone (day windows are counted in local days)."""
        return (self.settings.clock or datetime.now(UTC)).astimezone(self.zone)

    def patient_key(self, request: HookRequest, caller: Caller | None) -> str:
        """The patient's keyed hash, scoped to the EHR that calls: two health systems (or a test client and
        a production EHR) may use the same patient id, and feedback from one must never silence the other's
        cards. The scope is the trusted client's tenant, else its issuer; with auth off, the fhirServer."""
        scope = (
            (caller.client.tenant or caller.client.iss) if caller is not None else (request.fhir_server or "")
        )
        return self.hasher(f"{scope}\x1f{request.patient_id}" if scope else request.patient_id)

    def evaluate(self, service: Service, body: Any, caller: Caller | None = None) -> Outcome:
        """`caller` is the authenticated CDS client (None when auth is off)."""
        started = time.perf_counter()
        fields: dict[str, Any] = {"hookInstance": _claimed_instance(body), "service": service.id}
        try:
            # Inside the try: a request that fails validation is a rejected call and is logged as one.
            request = parse_hook_request(body, service.hook, require_https=self.settings.profile == "prod")
            for warning in request.warnings:
                log(logger, logging.WARNING, "hook.accepted_with_warning", warning=warning, **fields)
            self.check_fhir_server(request, caller)
            self.check_prefetch_size(request)
            deadline = Deadline(self.settings.fhir_deadline_s)
            gathered = self.gather(service, request, deadline)
            self.read_attachments(service, request, gathered, deadline)
            fields.update(
                prefetch=gathered.prefetch_status,
                fhir_calls=gathered.fhir_calls,
                fhir_ms=round(gathered.fhir_ms, 1),
            )
            hook_input = self.build_input(service, request, gathered)
            patient = self.patient_key(request, caller)
            cards = list(service.handler(hook_input))
            for card in cards:
                card.uuid = self.card_ids.new()
            undeclared = service.undeclared(cards)
            if undeclared:  # a rule the service does not declare: a bug, never shown to a clinician
                log(logger, logging.ERROR, "hook.undeclared_rule", service=service.id, cards=undeclared)
                raise RuntimeError(f"{service.id} returned undeclared rules {undeclared}")
            withheld: list[Withheld] = []
            suppression = "off"
            if self.suppressor is not None and cards:
                cards, withheld, suppression = self.suppressor.withhold(
                    service, patient, cards, [*gathered.raws, *request.draft_orders]
                )
            body_out = Response(cards=cards).to_json()
        except HookError as err:
            log(
                logger,
                logging.WARNING,
                "hook.rejected",
                status=err.status,
                reason=err.code,
                message=err.message[:300],
                **fields,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            err.logged = True
            metrics.observe_hook(service.id, service.hook, time.perf_counter() - started, outcome="rejected")
            raise
        log(
            logger,
            logging.INFO,
            "hook.call",
            status=200,
            **fields,
            patient=patient,
            cards=len(cards),
            rules=[c.rule for c in cards],
            indicators=[c.indicator for c in cards],
            suppressed=[w.card.rule for w in withheld],
            suppression=suppression,
            skipped_invalid=dict(hook_input.skipped),
            unresolved=len(gathered.unresolved),
            degraded=gathered.degraded,
            incomplete=sorted(gathered.incomplete),
            attachments=gathered.attachments,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        metrics.observe_hook(
            service.id,
            service.hook,
            time.perf_counter() - started,
            prefetch_status=gathered.prefetch_status,
            cards=cards,
        )
        return Outcome(body_out, cards, request, withheld, patient)

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
        drafts = [*request.draft_orders, *request.draft_extras]
        known = {f"{r.get('resourceType')}/{r.get('id')}" for r in [*out.raws, *drafts]}
        wanted = [
            ref
            for ref in dict.fromkeys(_references(request.draft_orders, service.resolve_references))
            if ref not in known
        ]
        cap = self.settings.fhir_max_reference_reads
        if len(wanted) > cap:  # one call's draft orders must not buy it an unbounded number of reads
            log(logger, logging.WARNING, "fhir.reference_reads_capped", wanted=len(wanted), read=cap)
            out.unresolved.extend(wanted[cap:])
            wanted = wanted[:cap]
        reads = {f"ref:{ref}": ref for ref in wanted}
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
                out.incomplete.add(template_type(service.prefetch[key]))
        if not (queries or pages or reads):
            return out
        if not request.fhir_server:
            required = sorted(k for k in queries if k not in service.optional_prefetch)
            if required:
                raise HookError(
                    412,
                    f"prefetch for {', '.join(required)} is missing and no fhirServer was given",
                    code="prefetch-missing",
                )
            # Optional data the client chose not to send: answer without it (logged as degraded). It is the
            # EHR's configuration, not a search that failed, so cards do not repeat it on every call.
            out.degraded.extend(sorted(queries))
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
            if result.truncated and key in service.prefetch:
                # Cut at the page or size cap: "nothing on file" is not known for this type (issue 15).
                out.incomplete.add(template_type(service.prefetch[key]))
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
                if key in service.prefetch:
                    out.incomplete.add(template_type(service.prefetch[key]))
        if failed:
            raise HookError(
                412,
                f"could not obtain required data from the FHIR server: {', '.join(sorted(failed))}",
                code="fhir-unavailable",
            )

    # -- stage 3: attachments become text ------------------------------------------------------------

    def read_attachments(
        self, service: Service, request: HookRequest, gathered: Gathered, deadline: Deadline
    ) -> None:
        """Report files of the resources the service keeps: fetched by url, read into inline text.

        Never raises for a missing attachment: the rules answer from what arrived within the deadline.
        """
        token = request.fhir_authorization.access_token if request.fhir_authorization else None
        fetch_started = time.perf_counter()
        gathered.raws = dedupe(gathered.raws)  # two prefetch keys may return the same report: read it once
        try:
            gathered.raws, gathered.attachments = self.attachments.normalize(
                gathered.raws,
                keep=keep_for(service.relevant, service.wants_attachments, self.now()),
                fhir_server=request.fhir_server,
                token=token,
                deadline=deadline,
            )
        except Exception as exc:  # odd JSON the stage did not foresee: answer from the resources as sent
            log(logger, logging.ERROR, "attachments.failed", error_type=type(exc).__name__)
        if gathered.attachments:
            gathered.fhir_ms += (time.perf_counter() - fetch_started) * 1000

    # -- stage 4: typed input ----------------------------------------------------------------------

    def build_input(self, service: Service, request: HookRequest, gathered: Gathered) -> HookInput:
        referenced = frozenset(_references(request.draft_orders, service.resolve_references))
        zone = self.zone
        parsed = parse_resources(
            gathered.raws, service.relevant, request.patient_id, referenced, self.models, zone, deduped=True
        )
        skipped, foreign = parsed.skipped, parsed.other_patient
        drafts: dict[str, list[Any]] = {"orders": [], "extras": []}
        for kind, raws in (("orders", request.draft_orders), ("extras", request.draft_extras)):
            for raw in raws:
                if other_patient(raw, request.patient_id):
                    foreign[f"draft:{raw.get('resourceType')}"] += 1
                    continue
                # Cached like the chart: order-select and order-sign send the same drafts again.
                model = parse_cached(raw, request.patient_id, self.models, zone)
                if model is None:
                    skipped[f"draft:{raw.get('resourceType')}"] += 1
                else:
                    drafts[kind].append(model)
        if foreign:  # counted by type only: which patient it named is nobody's business in a log
            log(
                logger,
                logging.WARNING,
                "hook.other_patient_dropped",
                service=service.id,
                counts=dict(foreign),
            )
        return HookInput(
            hook=request.hook,
            hook_instance=request.hook_instance,
            patient_id=request.patient_id,
            user_id=request.context["userId"],
            now=self.now(),
            context=request.context,
            resources=parsed.resources,
            draft_orders=drafts["orders"],
            selections=request.selections,
            skipped=dict(skipped),
            unresolved=tuple(gathered.unresolved),
            draft_extras=drafts["extras"],
            other_patient=dict(foreign),
            incomplete=tuple(sorted(gathered.incomplete)),
        )
