"""Small, pure readers over fhir.resources models: codes, dates, statuses and attached text.

FHIR lets the same fact sit in many places (effectiveDateTime or effectivePeriod.start or issued;
code.text or a coding display; presentedForm base64). These helpers read them in one order so
every rule sees dates and text the same way.
"""

from __future__ import annotations

import base64
import binascii
import copy
import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import Any

from cds.attachments import FETCH_REASONS, SOURCE_TYPE_URL, UNREADABLE_URL


class _Serialised:
    """FHIR JSON of recently serialised models, by model object (kept alive here, so its id is its own).

    Models come from the engine's per-worker cache, one object per exact JSON, and nothing changes them:
    the same object serialises to the same JSON. A draft order's `model_dump` costs ~0.2 ms, a copy ~0.02.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[int, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def json(self, model: Any) -> dict[str, Any]:
        with self._lock:
            item = self._items.get(id(model))
            if item is not None and item[0] is model:
                self._items.move_to_end(id(model))
                return copy.deepcopy(item[1])
        dumped = model.model_dump(mode="json", exclude_none=True, by_alias=True)
        with self._lock:
            self._items[id(model)] = (model, dumped)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return copy.deepcopy(dumped)


_SERIALISED = _Serialised(256)


def resource_json(res: Any) -> dict[str, Any]:
    """The resource as FHIR JSON (what `model_dump` gives), a copy the caller may change."""
    return _SERIALISED.json(res)


def codings(concept: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept or a list of them."""
    if concept is None:
        return []
    if isinstance(concept, list):
        return [pair for item in concept for pair in codings(item)]
    return [(c.system, c.code) for c in (getattr(concept, "coding", None) or [])]


def concept_text(concept: Any) -> str:
    """code.text plus coding displays: where vendors put the human name of a local code."""
    if concept is None:
        return ""
    if isinstance(concept, list):
        return " ".join(concept_text(c) for c in concept)
    parts = [getattr(concept, "text", None) or ""]
    parts += [c.display or "" for c in (getattr(concept, "coding", None) or [])]
    return " ".join(p for p in parts if p)


def concept_name(concept: Any) -> str:
    """The one best human name of a concept: its text, else the first coding display."""
    if concept is None:
        return ""
    if getattr(concept, "text", None):
        return concept.text
    return next((c.display for c in getattr(concept, "coding", None) or [] if c.display), "")


def status_code(concept: Any) -> str | None:
    """First code of a status CodeableConcept (Condition.clinicalStatus, verificationStatus)."""
    pairs = codings(concept)
    return pairs[0][1] if pairs else None


def as_date(value: Any, zone: Any = None) -> date | None:
    """A FHIR date/dateTime as a calendar day in the site's zone (`zone`; None keeps the value's own)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if zone is not None and value.tzinfo is not None:
            value = value.astimezone(zone)
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        if len(text) == 4:
            return date(int(text), 7, 1)  # a year only: mid-year, so day windows stay sane
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 15)
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def resource_date(res: Any, zone: Any = None) -> date | None:
    """DATE(x) of the brief: the first clinically meaningful date the resource carries."""
    if res.get_resource_type() == "DocumentReference":
        return document_date(res, zone)
    fields = type(res).model_fields  # a missing attribute goes through pydantic's slow __getattr__
    for name in (
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveInstant",
        "performedDateTime",
        "performedPeriod",
        "occurrenceDateTime",
        "occurrencePeriod",
        "onsetDateTime",
        "onsetPeriod",
        "period",
        "issued",
        "date",
        "authoredOn",
        "authored",
        "recordedDate",
    ):
        value = getattr(res, name) if name in fields else None
        if value is None:
            continue
        if hasattr(value, "start"):
            value = value.start or getattr(value, "end", None)
        found = as_date(value, zone)
        if found:
            return found
    return None


def document_date(doc: Any, zone: Any = None) -> date | None:
    """When the documented care happened: the service period (an outside MRI scanned in months later is
    dated by its exam), else the note's own date."""
    period = doc.context.period if doc.context else None
    for value in (period.start if period else None, period.end if period else None, doc.date):
        found = as_date(value, zone)
        if found:
            return found
    return None


def onset_date(cond: Any, zone: Any = None) -> date | None:
    """When the condition began: its onset, else when it was recorded."""
    for name in ("onsetDateTime", "onsetPeriod", "recordedDate"):
        value = getattr(cond, name, None)
        if value is not None and hasattr(value, "start"):
            value = value.start
        found = as_date(value, zone)
        if found:
            return found
    return None


def recorded_date(cond: Any, zone: Any = None) -> date | None:
    return as_date(cond.recordedDate, zone)


def reference(res: Any) -> str:
    return f"{res.get_resource_type()}/{res.id}" if getattr(res, "id", None) else res.get_resource_type()


def condition_usable(cond: Any) -> bool:
    """USABLE_COND: not entered-in-error or refuted (historical evidence may still count)."""
    return status_code(cond.verificationStatus) not in ("entered-in-error", "refuted")


def condition_active(cond: Any) -> bool:
    """ACTIVE_COND of the brief."""
    if not condition_usable(cond):
        return False
    clinical = status_code(cond.clinicalStatus)
    if clinical is not None:
        return clinical in ("active", "recurrence", "relapse")
    return not any(
        getattr(cond, n, None)
        for n in ("abatementDateTime", "abatementPeriod", "abatementString", "abatementAge", "abatementRange")
    )


# Markup is stripped before any text cap applies (a vendor report can hold 100 KB of HTML around a
# 300-character impression), so the raw cap is this multiple of the text cap.
MARKUP_FACTOR = 50


def attachment_text(att: Any, max_chars: int) -> tuple[str, str] | None:
    """(decoded text, content type) of an inline text/plain or HTML attachment, else None (PDF, URL-only).

    HTML is returned as markup (the EMG reader needs its block structure to find sections); callers strip
    it before capping the text.
    """
    content_type = (getattr(att, "contentType", None) or "text/plain").split(";")[0].strip().lower()
    if content_type not in ("text/plain", "text/html", "application/xhtml+xml") or not att.data:
        return None
    raw = att.data
    html = content_type != "text/plain"
    limit = max_chars * (MARKUP_FACTOR if html else 1)
    try:
        data = raw if isinstance(raw, bytes) else base64.b64decode(raw, validate=False)
        # fhir.resources already decodes base64Binary to bytes in some versions; decode defensively.
        text = data[: limit * 4].decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
    return text[:limit], content_type


def attachment_unreadable(att: Any) -> str | None:
    """Why the engine could not turn this attachment into text, or None (it has text, or nothing to read).

    Reasons the file holds no readable text: no-text-layer, encrypted, corrupt, truncated, too-complex,
    unsupported-type, too-large, empty, read-budget. Reasons it was never obtained (`attachment_missing`):
    not-found, timeout, unauthorized, foreign-host, no-fhir-server, fetch-failed, over-count.
    """
    for ext in getattr(att, "extension", None) or []:
        if getattr(ext, "url", None) == UNREADABLE_URL:
            return getattr(ext, "valueCode", None) or "unreadable"
    return None


def attachment_missing(reason: str | None) -> bool:
    """True for the reasons of `attachment_unreadable` that mean the file was never fetched."""
    return reason in FETCH_REASONS


def attachment_source_type(att: Any) -> str | None:
    """The content type the engine read the text from (application/pdf, text/rtf, ...), if it converted it."""
    for ext in getattr(att, "extension", None) or []:
        if getattr(ext, "url", None) == SOURCE_TYPE_URL:
            return getattr(ext, "valueCode", None)
    return None


def narrative_values(obs: Any) -> list[str]:
    """Text an Observation carries: valueString, valueCodeableConcept, components, note."""
    out = []
    if getattr(obs, "valueString", None):
        out.append(obs.valueString)
    if getattr(obs, "valueCodeableConcept", None) is not None:
        out.append(concept_text(obs.valueCodeableConcept))
    for comp in getattr(obs, "component", None) or []:
        label = concept_text(comp.code)
        value = comp.valueString or (
            concept_text(comp.valueCodeableConcept) if comp.valueCodeableConcept else ""
        )
        if value:
            out.append(f"{label}: {value}" if label else value)
    for note in getattr(obs, "note", None) or []:
        if note.text:
            out.append(note.text)
    return [t for t in out if t and t.strip()]
