"""The attachment stage (after gather, before parse): report files become inline text in the raw JSON.

For the resources a service's pre-filter keeps (`Service.relevant`, then `Service.wants_attachments`),
every attachment (DiagnosticReport.presentedForm, DocumentReference.content[].attachment) is normalised:
- `url` without `data`: fetched through the FHIR client of the fallback (the call's fhirAuthorization
  token, the SSRF guard, the hook deadline, in parallel, a size cap per attachment); a relative
  `Binary/123` is resolved against fhirServer, an absolute URL must have fhirServer's origin;
- PDF, RTF, HTML and plain text in any charset become inline UTF-8 `data`, `contentType` text/plain
  (HTML stays text/html markup: the EMG reader uses its blocks), with the original type in the
  `SOURCE_TYPE_URL` extension;
- what cannot be read or fetched gets no `data` and an `UNREADABLE_URL` extension with the reason, and
  a logged `evidence_unreadable`.
The clinical side reads only text (`hooks.common.fhir.attachment_text` / `attachment_unreadable`).
A per-worker cache keyed by URL, the holding resource's version and the caller's token skips refetching
and rereading the same report within a short TTL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from cds.config import Settings
from cds.documents import HTML, PLAIN, DocumentText, Limits, Unreadable, media_type, read_document
from cds.fhir import BinaryResult, Deadline, FhirClient, same_origin
from cds.logs import log

logger = logging.getLogger("cds.attachments")

SOURCE_TYPE_URL = "urn:spine-cds:fhir:extension:attachment-source-content-type"
UNREADABLE_URL = "urn:spine-cds:fhir:extension:attachment-unreadable"
# Reasons that say the file was never obtained (the rest say it was obtained but holds no readable text).
FETCH_REASONS = frozenset(
    {"not-found", "timeout", "unauthorized", "foreign-host", "no-fhir-server", "fetch-failed", "over-count"}
)
_FETCH_ERRORS = {
    "not-found": "not-found",
    "timeout": "timeout",
    "unauthorized": "unauthorized",
    "forbidden": "unauthorized",
    "response-too-large": "too-large",
    "forbidden-address": "foreign-host",
}
_DATE_FIELDS = ("effectiveDateTime", "issued", "date")


@dataclass(frozen=True)
class _Outcome:
    document: DocumentText | None = None
    reason: str | None = None  # why there is no text


@dataclass
class _Slot:
    """One attachment of one resource: where it sits, and what it becomes."""

    resource: dict[str, Any]
    path: tuple[Any, ...]  # e.g. ("presentedForm", 0) or ("content", 1, "attachment")
    attachment: dict[str, Any]
    url: str | None = None  # absolute URL to fetch
    outcome: _Outcome | None = None


class _Cache:
    """Readings of fetched attachments per worker: (token digest, URL, resource version) -> outcome."""

    def __init__(self, entries: int, ttl_s: float) -> None:
        self.entries = entries
        self.ttl_s = ttl_s
        self._items: OrderedDict[tuple[str, str, str], tuple[float, _Outcome]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> _Outcome | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: tuple[str, str, str], outcome: _Outcome) -> None:
        if self.entries <= 0 or self.ttl_s <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl_s, outcome)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


class AttachmentStage:
    def __init__(self, settings: Settings, fhir: FhirClient) -> None:
        self.settings = settings
        self.fhir = fhir
        self.limits = Limits(
            max_bytes=settings.attachment_max_bytes,
            max_chars=settings.attachment_max_text_chars,
            max_pdf_pages=settings.attachment_max_pdf_pages,
        )
        self.cache = _Cache(settings.attachment_cache_entries, settings.attachment_cache_ttl_s)

    def normalize(
        self,
        raws: list[dict[str, Any]],
        *,
        keep: Callable[[dict[str, Any]], bool],
        fhir_server: str | None,
        token: str | None,
        deadline: Deadline,
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The raws with the attachments of kept resources normalised, and counts for the hook log."""
        stats: Counter[str] = Counter()
        slots = [slot for raw in raws if keep(raw) for slot in _slots(raw)]
        if not slots:
            return raws, {}
        read_deadline = time.monotonic() + self.settings.attachment_read_budget_s
        remote = self._plan(slots, fhir_server, stats)
        self._fetch(remote, token, deadline, read_deadline, stats)
        for slot in slots:
            if slot.outcome is None and slot.url is None and "data" in slot.attachment:
                slot.outcome = self._inline(slot.attachment, read_deadline)
                stats["inline-converted" if slot.outcome and slot.outcome.document else "inline"] += 1
        changed: dict[int, dict[str, Any]] = {}
        for slot in slots:
            if slot.outcome is None:
                continue
            if slot.outcome.reason:
                stats["unreadable"] += 1
                log(
                    logger,
                    logging.WARNING,
                    "evidence_unreadable",
                    reason=slot.outcome.reason,
                    resource=slot.resource.get("resourceType"),
                    content_type=media_type(slot.attachment.get("contentType"))[0] or None,
                    fetched=slot.url is not None,
                )
            if id(slot.resource) not in changed:
                changed[id(slot.resource)] = dict(slot.resource)
            _replace(changed[id(slot.resource)], slot.path, _rewritten(slot.attachment, slot.outcome))
        out = [changed.get(id(raw), raw) for raw in raws]
        return out, dict(stats)

    # -- planning and fetching ------------------------------------------------------------------------

    def _plan(self, slots: list[_Slot], fhir_server: str | None, stats: Counter[str]) -> list[_Slot]:
        """Slots to fetch, newest resources first, at most `attachment_max_count`; the rest get a reason."""
        remote: list[_Slot] = []
        for slot in slots:
            url = slot.attachment.get("url")
            if slot.attachment.get("data") is not None or not isinstance(url, str) or not url.strip():
                continue
            if url.startswith("#") or url.startswith("urn:"):
                slot.outcome = _Outcome(reason="unsupported-url")
            elif not fhir_server:
                slot.outcome = _Outcome(reason="no-fhir-server")
            else:
                absolute = urljoin(fhir_server.rstrip("/") + "/", url.strip())
                if not same_origin(absolute, fhir_server):
                    log(logger, logging.WARNING, "attachment.refused", reason="not the fhirServer's origin")
                    slot.outcome = _Outcome(reason="foreign-host")
                    stats["refused"] += 1
                else:
                    slot.url = absolute
                    remote.append(slot)
        remote.sort(key=lambda s: _resource_date(s.resource), reverse=True)
        for slot in remote[self.settings.attachment_max_count :]:
            slot.outcome = _Outcome(reason="over-count")
        return remote[: self.settings.attachment_max_count]

    def _fetch(
        self,
        remote: list[_Slot],
        token: str | None,
        deadline: Deadline,
        read_deadline: float,
        stats: Counter[str],
    ) -> None:
        token_key = hashlib.blake2b((token or "").encode(), digest_size=8).hexdigest()
        keys = {id(s): (token_key, s.url or "", _version(s.resource)) for s in remote}
        wanted: dict[str, tuple[str, str]] = {}
        for slot in remote:
            cached = self.cache.get(keys[id(slot)])
            if cached is not None:
                slot.outcome = cached
                stats["cached"] += 1
            else:
                wanted.setdefault(slot.url or "", (slot.url or "", _declared_type(slot.attachment)))
        if not wanted:
            return
        if deadline.expired:
            results = {u: BinaryResult(u, error="timeout") for u in wanted}
        else:
            results = self.fhir.fetch_binaries(
                wanted, token=token, deadline=deadline, max_bytes=self.limits.max_bytes
            )
        readings: dict[str, _Outcome] = {}
        for url, result in results.items():
            if not result.ok:
                readings[url] = _Outcome(reason=_FETCH_ERRORS.get(result.error or "", "fetch-failed"))
                continue
            stats["fetched"] += 1
            declared = _declared_type(next(s.attachment for s in remote if s.url == url))
            readings[url] = self._read(
                result.content, _served_type(result.content_type, declared), read_deadline
            )
        for slot in remote:
            if slot.outcome is None:
                slot.outcome = readings.get(slot.url or "", _Outcome(reason="timeout"))
                if slot.outcome.document is not None or slot.outcome.reason not in FETCH_REASONS:
                    self.cache.put(keys[id(slot)], slot.outcome)

    def _read(self, data: bytes, content_type: str, read_deadline: float) -> _Outcome:
        if time.monotonic() > read_deadline:
            return _Outcome(reason="read-budget")
        try:
            return _Outcome(document=read_document(data, content_type, self.limits, read_deadline))
        except Unreadable as exc:
            return _Outcome(reason=exc.reason)

    def _inline(self, attachment: dict[str, Any], read_deadline: float) -> _Outcome | None:
        """Inline data: PDF/RTF/other charsets are read; UTF-8 text and HTML are left exactly as sent."""
        mtype, charset = media_type(attachment.get("contentType"))
        if (mtype in ("", PLAIN, HTML, "application/xhtml+xml")) and (charset or "utf-8").lower() in (
            "utf-8",
            "utf8",
            "us-ascii",
        ):
            return None
        data = attachment.get("data")
        if not isinstance(data, str):
            return _Outcome(reason="corrupt")
        if len(data) > self.limits.max_bytes * 4 // 3 + 4:
            return _Outcome(reason="too-large")
        try:
            raw = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            return _Outcome(reason="corrupt")
        return self._read(raw, str(attachment.get("contentType") or ""), read_deadline)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _slots(raw: dict[str, Any]) -> Iterator[_Slot]:
    """The attachments of a raw resource (odd JSON is skipped here; parsing judges it later)."""
    rtype = raw.get("resourceType")
    if rtype == "DiagnosticReport":
        for i, att in enumerate(_items(raw.get("presentedForm"))):
            if isinstance(att, dict):
                yield _Slot(raw, ("presentedForm", i), att)
    elif rtype == "DocumentReference":
        for i, content in enumerate(_items(raw.get("content"))):
            att = content.get("attachment") if isinstance(content, dict) else None
            if isinstance(att, dict):
                yield _Slot(raw, ("content", i, "attachment"), att)


def _replace(resource: dict[str, Any], path: tuple[Any, ...], value: dict[str, Any]) -> None:
    """Set `value` at `path` in a copied resource, copying each container on the way (the request's JSON
    stays exactly as sent)."""
    node: Any = resource
    for step in path[:-1]:
        child = node[step]
        node[step] = list(child) if isinstance(child, list) else dict(child)
        node = node[step]
    node[path[-1]] = value


def _rewritten(attachment: dict[str, Any], outcome: _Outcome) -> dict[str, Any]:
    out = {k: v for k, v in attachment.items() if k not in ("data", "size", "hash")}
    extensions = [
        e
        for e in _items(attachment.get("extension"))
        if not (isinstance(e, dict) and e.get("url") in (SOURCE_TYPE_URL, UNREADABLE_URL))
    ]
    if outcome.document is not None:
        doc = outcome.document
        out["contentType"] = f"{doc.content_type}; charset=utf-8"
        out["data"] = base64.b64encode(doc.text.encode("utf-8")).decode("ascii")
        extensions.append({"url": SOURCE_TYPE_URL, "valueCode": doc.source_type or "unknown"})
    else:
        extensions.append({"url": UNREADABLE_URL, "valueCode": outcome.reason or "unreadable"})
    out["extension"] = extensions
    return out


def _declared_type(attachment: dict[str, Any]) -> str:
    return media_type(attachment.get("contentType"))[0]


def _served_type(served: str, declared: str) -> str:
    """The server's Content-Type unless it is generic; then the attachment's declared type."""
    mtype, _ = media_type(served)
    if mtype in ("", "application/octet-stream", "binary/octet-stream"):
        return declared
    return served


def _version(resource: dict[str, Any]) -> str:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    return str(meta.get("versionId") or meta.get("lastUpdated") or "")


def _resource_date(resource: dict[str, Any]) -> str:
    for name in _DATE_FIELDS:
        if isinstance(resource.get(name), str):
            return resource[name]
    context = resource.get("context")
    period = resource.get("effectivePeriod") or (context.get("period") if isinstance(context, dict) else None)
    if isinstance(period, dict) and isinstance(period.get("start"), str):
        return period["start"]
    return ""


def keep_for(relevant: Callable[..., bool] | None, wants: Callable[..., bool] | None, now: datetime):
    """The predicate of resources whose attachments a service reads (its pre-filter, then its window)."""

    def keep(raw: dict[str, Any]) -> bool:
        if raw.get("resourceType") not in ("DiagnosticReport", "DocumentReference"):
            return False
        try:
            return (relevant is None or relevant(raw)) and (wants is None or wants(raw, now.date()))
        except Exception:  # a filter bug on odd JSON: read the attachment rather than lose the report
            return True

    return keep
