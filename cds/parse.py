"""Raw FHIR JSON -> fhir.resources (R4B, wire-compatible with R4) models, only for what a rule reads.

Model validation costs roughly 0.05-0.1 ms per resource, so the service's `relevant` filter runs
on raw JSON first. A resource that fails validation is skipped and counted, never fatal: one bad
Observation in a 300-resource prefetch must not cost the clinician the whole answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

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


def parse_one(raw: dict[str, Any], patient_id: str | None = None) -> Any | None:
    """Validate one resource; on failure, repair what is safe to repair and try again.

    A malformed optional element (a bad date, a wrong type) is dropped; a missing required subject,
    status or intent gets a stand-in. Anything else (bad id, unknown type) rejects the resource.
    """
    cls = model_class(str(raw.get("resourceType", "")))
    if cls is None:
        return None
    data = raw
    for _ in range(_REPAIR_ROUNDS + 1):
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
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
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(raw: dict[str, Any], patient_id: str | None) -> bytes | None:
        try:
            text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return None
        return hashlib.blake2b(f"{patient_id}|{text}".encode(), digest_size=16).digest()

    def get(self, key: bytes) -> Any | None:
        with self._lock:
            model = self._items.get(key)
            if model is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return model

    def put(self, key: bytes, model: Any) -> None:
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def parse_cached(raw: dict[str, Any], patient_id: str | None, cache: ModelCache | None) -> Any | None:
    if cache is None or cache.max_entries <= 0:
        return parse_one(raw, patient_id)
    key = cache.key(raw, patient_id)
    if key is None:
        return parse_one(raw, patient_id)
    model = cache.get(key)
    if model is None:
        model = parse_one(raw, patient_id)
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


def parse_resources(
    raws: Iterable[dict[str, Any]],
    relevant: Callable[[dict[str, Any]], bool] | None = None,
    patient_id: str | None = None,
    keep: frozenset[str] = frozenset(),
    cache: ModelCache | None = None,
) -> tuple[dict[str, list[Any]], Counter[str], int]:
    """Returns (resources by type, invalid-skipped count by type, number filtered out as irrelevant).

    `keep` names resources ("Type/id") that are parsed whatever the filter says: the draft orders
    point at them (reasonReference), so a rule must be able to resolve them.
    """
    parsed: dict[str, list[Any]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    filtered = 0
    for raw in dedupe(raws):
        if relevant is not None and f"{raw.get('resourceType')}/{raw.get('id')}" not in keep:
            try:
                wanted = relevant(raw)
            except Exception:  # a filter bug on odd JSON must not fail the call; parse the resource instead
                logger.warning("relevance filter failed", extra={"fields": {"type": raw.get("resourceType")}})
                wanted = True
            if not wanted:
                filtered += 1
                continue
        model = parse_cached(raw, patient_id, cache)
        if model is None:
            skipped[str(raw.get("resourceType"))[:40]] += 1
            continue
        parsed[model.get_resource_type()].append(model)
    return dict(parsed), skipped, filtered
