"""Raw FHIR JSON -> fhir.resources (R4B, wire-compatible with R4) models, only for what a rule reads.

Model validation costs roughly 0.05-0.1 ms per resource, so the service's `relevant` filter runs
on raw JSON first. A resource that fails validation is skipped and counted, never fatal: one bad
Observation in a 300-resource prefetch must not cost the clinician the whole answer.

Two things real EHR data needs before validation:
- a resource whose subject or patient names *another* patient is dropped (and counted): a misfiled
  document must never put another patient's red flag on this patient's chart;
- a dateTime without a zone ("2026-03-01T08:30:00", invalid FHIR but common) is read in the site's
  zone (CDS_TIMEZONE), never dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import msgspec
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

logger = logging.getLogger("cds.parse")


@lru_cache(maxsize=256)
def model_class(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


# Required elements that real servers and EHR drafts sometimes omit, and a safe stand-in for each:
# "unknown" statuses never satisfy a rule's status filter, and the subject is the patient in context.
_STAND_INS: dict[str, Any] = {"status": "unknown", "intent": "order"}
_REPAIR_ROUNDS = 3


_ZONELESS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$")
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_SUBJECT_FIELDS = ("subject", "patient")


def _zoned(value: Any, zone: tzinfo) -> tuple[Any, bool]:
    """Every zone-less dateTime in `value`, read in `zone`; (new value, changed?)."""
    if isinstance(value, str):
        if _ZONELESS.match(value):
            stamp = datetime.fromisoformat(value[:26] if "." in value else value)
            return stamp.replace(tzinfo=zone).isoformat(), True
        return value, False
    if isinstance(value, dict):
        out, changed = {}, False
        for key, item in value.items():
            out[key], hit = _zoned(item, zone)
            changed = changed or hit
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        items = [_zoned(item, zone) for item in value]
        if any(hit for _, hit in items):
            return [item for item, _ in items], True
    return value, False


def named_patient(raw: dict[str, Any]) -> str | None:
    """The patient id a resource's subject/patient reference names (None when it names none we can read)."""
    if raw.get("resourceType") == "Patient":
        return raw.get("id") if isinstance(raw.get("id"), str) else None
    for name in _SUBJECT_FIELDS:
        ref = raw.get(name)
        ref = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(ref, str) and (patient := _patient_in(ref)) is not None:
            return patient
    return None


@lru_cache(maxsize=1024)
def _patient_in(reference: str) -> str | None:
    """Every resource of a chart names the same patient: the answer for a reference string is kept."""
    m = _PATIENT_REF.search(reference)
    return m.group(1) if m else None


def other_patient(raw: dict[str, Any], patient_id: str | None) -> bool:
    """True when the resource is about someone else. No subject (a patient-scoped search) means ours."""
    named = named_patient(raw)
    return patient_id is not None and named is not None and named != patient_id


def parse_one(raw: dict[str, Any], patient_id: str | None = None, zone: tzinfo | None = None) -> Any | None:
    """Validate one resource; on failure, repair what is safe to repair and try again.

    A zone-less dateTime is read in `zone`; a malformed optional element (a bad date, a wrong type) is
    dropped; a missing required subject, status or intent gets a stand-in. Anything else (bad id,
    unknown type) rejects the resource.
    """
    cls = model_class(str(raw.get("resourceType", "")))
    if cls is None:
        return None
    data = raw
    zoned = zone is None
    for _ in range(_REPAIR_ROUNDS + 2):
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            if not zoned:
                zoned = True
                data, changed = _zoned(data, zone)
                if changed:
                    continue
            data = _repaired(data, exc, patient_id)
            if data is None:
                return None
        except (ValueError, TypeError, RecursionError):
            return None
    return None


def _repaired(data: dict[str, Any], exc: ValidationError, patient_id: str | None) -> dict[str, Any] | None:
    fixed = dict(data)
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = loc[0] if loc and isinstance(loc[0], str) else None
        if name is None or name in ("resourceType", "id"):
            return None
        if error.get("type", "").endswith("missing"):
            if name == "subject" and patient_id:
                fixed[name] = {"reference": f"Patient/{patient_id}"}
            elif name in _STAND_INS:
                fixed[name] = _STAND_INS[name]
            else:
                return None
        else:
            fixed.pop(name, None)
    return fixed if fixed != data else None


_CANONICAL = msgspec.json.Encoder(order="sorted")


class ModelCache:
    """Parsed models of recently seen resources, keyed by their exact JSON.

    An EHR sends the same chart for patient-view, order-select and order-sign within minutes, so most
    resources of a call were validated by an earlier one. The key is a digest of the canonical JSON
    (plus the patient in context, which repairs may use), so any change to a resource is a miss. Models
    are shared read-only between calls. About 10 KB per cached resource.
    """

    def __init__(self, max_entries: int = 2000) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(raw: dict[str, Any], patient_id: str | None) -> bytes | None:
        """msgspec writes the canonical JSON in ~1.7 µs per resource (json.dumps: ~7.6 µs). It writes NaN and
        ±inf (a body the standard library decoded: 1e400) as null, so a text holding null is spelt out by
        json.dumps instead, under another prefix: two different resources never share a key."""
        try:
            text = b"m" + _CANONICAL.encode(raw)
            if b"null" in text:
                text = b"j" + json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
            return None
        return hashlib.blake2b(f"{patient_id}|".encode() + text, digest_size=16).digest()

    def get(self, key: bytes) -> Any | None:
        with self._lock:
            model = self._items.get(key)
            if model is not None:
                self._items.move_to_end(key)
            return model

    def put(self, key: bytes, model: Any) -> None:
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def parse_cached(
    raw: dict[str, Any], patient_id: str | None, cache: ModelCache | None, zone: tzinfo | None = None
) -> Any | None:
    if cache is None or cache.max_entries <= 0:
        return parse_one(raw, patient_id, zone)
    key = cache.key(raw, patient_id)
    if key is None:
        return parse_one(raw, patient_id, zone)
    model = cache.get(key)
    if model is None:
        model = parse_one(raw, patient_id, zone)
        if model is not None:
            cache.put(key, model)
    return model


def _version_key(raw: dict[str, Any]) -> str:
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    return str(meta.get("lastUpdated") or "")


def dedupe(raws: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per Type/id (the most recently updated wins); id-less resources are kept as they are."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    for raw in raws:
        rid = raw.get("id")
        if not isinstance(rid, str):
            anonymous.append(raw)
            continue
        key = (str(raw.get("resourceType")), rid)
        if key not in by_key or _version_key(raw) > _version_key(by_key[key]):
            by_key[key] = raw
    return [*by_key.values(), *anonymous]


@dataclass
class Parsed:
    resources: dict[str, list[Any]] = field(default_factory=dict)  # resourceType -> models
    skipped: Counter[str] = field(default_factory=Counter)  # invalid resources skipped, by type
    filtered: int = 0  # judged irrelevant by the service's pre-filter
    other_patient: Counter[str] = field(default_factory=Counter)  # about another patient, by type


def parse_resources(
    raws: Iterable[dict[str, Any]],
    relevant: Callable[[dict[str, Any]], bool] | None = None,
    patient_id: str | None = None,
    keep: frozenset[str] = frozenset(),
    cache: ModelCache | None = None,
    zone: tzinfo | None = None,
    deduped: bool = False,
) -> Parsed:
    """Parse what a rule can use; count what was skipped, filtered out or about another patient.

    `keep` names resources ("Type/id") that are parsed whatever the filter says: the draft orders
    point at them (reasonReference), so a rule must be able to resolve them. `deduped`: the caller already
    passed them through `dedupe` (the pipeline does, before reading attachments).
    """
    parsed: dict[str, list[Any]] = defaultdict(list)
    out = Parsed()
    for raw in raws if deduped else dedupe(raws):
        rtype = str(raw.get("resourceType"))[:40]
        if rtype == "OperationOutcome":
            continue
        if other_patient(raw, patient_id):
            out.other_patient[rtype] += 1
            continue
        if relevant is not None and f"{raw.get('resourceType')}/{raw.get('id')}" not in keep:
            try:
                wanted = relevant(raw)
            except Exception:  # a filter bug on odd JSON must not fail the call; parse the resource instead
                logger.warning("relevance filter failed", extra={"fields": {"type": raw.get("resourceType")}})
                wanted = True
            if not wanted:
                out.filtered += 1
                continue
        model = parse_cached(raw, patient_id, cache, zone)
        if model is None:
            out.skipped[rtype] += 1
            continue
        parsed[model.get_resource_type()].append(model)
    out.resources = dict(parsed)
    return out
