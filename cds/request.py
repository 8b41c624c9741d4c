"""Validation of a hook call body against CDS Hooks 2.0 and the Hook Library contexts.

Everything that could make a handler misbehave is rejected here with a 400 and a message that
names the field, so the pipeline after this point can trust the shapes it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class HookError(Exception):
    """An error that maps to an HTTP status and a JSON body; never carries secrets or patient data."""

    def __init__(
        self, status: int, message: str, code: str = "invalid", retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 503 the caller should retry)
        self.logged = False  # set once `hook.rejected` / `feedback.rejected` was written for it


# \Z, not $: "$" also matches before a final newline, so "Practitioner/1\n" passed as a reference.
_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})\Z")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")

# Hook Library STU1 contexts: field -> (required, kind, allowed userId resource types)
_USER_TYPES = {
    "patient-view": {"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"},
    "order-select": {"Practitioner", "PractitionerRole"},
    "order-sign": {"Practitioner", "PractitionerRole"},
}
_DRAFT_TYPES = {
    "ServiceRequest",
    "MedicationRequest",
    "NutritionOrder",
    "VisionPrescription",
    "DeviceRequest",
    "CommunicationRequest",
    "ImmunizationRecommendation",
    "SupplyRequest",
    "MedicationDispense",
}


@dataclass(frozen=True)
class FhirAuthorization:
    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    fhir_server: str | None
    fhir_authorization: FhirAuthorization | None
    prefetch: dict[str, Any]
    draft_orders: list[dict[str, Any]]
    selections: tuple[str, ...]
    # Non-order resources an EHR put in draftOrders (a Condition the order's reasonReference points at,
    # say): never judged as orders, but references resolve to them.
    draft_extras: list[dict[str, Any]] = field(default_factory=list)
    # Harmless oddities of real clients that were accepted, for the pipeline to log (e.g. a blank token).
    warnings: tuple[str, ...] = ()

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]


def _fail(message: str) -> HookError:
    return HookError(400, message)


def _string(obj: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(f"{where}.{key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{key} must be a non-empty string")
    return value


def _fhir_server(value: str | None, require_https: bool) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError as exc:  # "http://[bad": an unbalanced IPv6 bracket raised a 500 (schemathesis)
        raise _fail("fhirServer must be an absolute http(s) URL") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise _fail("fhirServer must be an absolute http(s) URL")
    if require_https and parts.scheme != "https":
        raise _fail("fhirServer must use https")
    if parts.username or parts.password:
        raise _fail("fhirServer must not carry credentials")
    return value


BLANK_TOKEN = "fhirAuthorization-blank-access-token"


def _blank_token(value: Any) -> bool:
    """A real client (the Da Vinci CRD Request Generator) sends `fhirAuthorization` with an empty or
    absent `access_token` when its FHIR server is open. That grants nothing, so it means no authorization."""
    return isinstance(value, dict) and (
        value.get("access_token") is None
        or (isinstance(value["access_token"], str) and not value["access_token"].strip())
    )


def _authorization(value: Any) -> FhirAuthorization | None:
    if value is None or _blank_token(value):
        return None
    if not isinstance(value, dict):
        raise _fail("fhirAuthorization must be an object")
    where = "fhirAuthorization"
    token = _string(value, "access_token", where)
    token_type = _string(value, "token_type", where)
    if token_type.lower() != "bearer":
        raise _fail("fhirAuthorization.token_type must be Bearer")
    expires_in = value.get("expires_in")
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 0:
        raise _fail("fhirAuthorization.expires_in must be a non-negative integer")
    scope = _string(value, "scope", where)
    subject = _string(value, "subject", where)
    patient = _string(value, "patient", where, required=False)
    return FhirAuthorization(token, token_type, expires_in, scope, subject, patient)


def _draft_orders(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(orders, other resources) of the draftOrders Bundle.

    Real EHRs sometimes include the Condition an order's reasonReference points at: harmless, so it is
    kept for reference resolution and otherwise ignored, rather than refusing the whole call.
    """
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise _fail("context.draftOrders must be a FHIR Bundle")
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise _fail("context.draftOrders.entry must be an array")
    orders, extras = [], []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise _fail(f"context.draftOrders.entry[{i}].resource must be a FHIR resource")
        rid = resource.get("id")
        if rid is not None and (not isinstance(rid, str) or not _ID.match(rid)):
            raise _fail(f"context.draftOrders.entry[{i}].id is not a valid FHIR id")
        (orders if resource["resourceType"] in _DRAFT_TYPES else extras).append(resource)
    return orders, extras


def _context(
    hook: str, context: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], tuple[str, ...]]:
    if not isinstance(context, dict):
        raise _fail("context must be an object")
    user_id = _string(context, "userId", "context")
    match = _REF.match(user_id)
    if not match or match.group(1) not in _USER_TYPES[hook]:
        allowed = ", ".join(sorted(_USER_TYPES[hook]))
        raise _fail(f"context.userId must be a reference like Practitioner/123 ({allowed})")
    patient_id = _string(context, "patientId", "context")
    if not _ID.match(patient_id):
        raise _fail("context.patientId must be a FHIR id")
    encounter_id = _string(context, "encounterId", "context", required=False)
    if encounter_id is not None and not _ID.match(encounter_id):
        raise _fail("context.encounterId must be a FHIR id")
    if hook == "patient-view":
        return context, [], [], ()
    if "draftOrders" not in context:
        raise _fail("context.draftOrders is required")
    orders, extras = _draft_orders(context["draftOrders"])
    selections: tuple[str, ...] = ()
    if hook == "order-select":
        raw = context.get("selections")
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise _fail("context.selections must be a non-empty array of references")
        present = {f"{o['resourceType']}/{o.get('id')}" for o in orders + extras}
        for sel in raw:
            if not _REF.match(sel):
                raise _fail(f"context.selections: {sel[:80]!r} is not a reference like ServiceRequest/123")
            if sel not in present:
                raise _fail(f"context.selections: {sel} is not an entry of draftOrders")
        selections = tuple(raw)
    return context, orders, extras, selections


def parse_hook_request(body: Any, expected_hook: str, *, require_https: bool = False) -> HookRequest:
    if not isinstance(body, dict):
        raise _fail("request body must be a JSON object")
    hook = _string(body, "hook", "request")
    if hook != expected_hook:
        raise _fail(f"hook {hook[:60]!r} does not match this service's hook {expected_hook!r}")
    hook_instance = _string(body, "hookInstance", "request")
    if not _UUID.match(hook_instance):  # the canonical form only, as openapi.yaml says
        raise _fail("hookInstance must be a UUID")
    fhir_server = _fhir_server(_string(body, "fhirServer", "request", required=False), require_https)
    raw_authorization = body.get("fhirAuthorization")
    authorization = _authorization(raw_authorization)
    warnings = (BLANK_TOKEN,) if _blank_token(raw_authorization) else ()
    if authorization and not fhir_server:
        raise _fail("fhirServer is required when fhirAuthorization is present")
    context, orders, extras, selections = _context(hook, body.get("context"))
    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise _fail("prefetch must be an object")
    for key, value in prefetch.items():
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)):
            raise _fail(f"prefetch.{key[:60]} must be a FHIR resource, a Bundle or null")
    if "extension" in body and not isinstance(body["extension"], dict):
        raise _fail("extension must be an object")
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        context=context,
        fhir_server=fhir_server,
        fhir_authorization=authorization,
        prefetch=prefetch,
        draft_orders=orders,
        selections=selections,
        draft_extras=extras,
        warnings=warnings,
    )
