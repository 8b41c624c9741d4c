"""The FHIR wire format the fallback speaks: results, failure kinds, status mapping, Binary bodies, origins.

Pure helpers of `cds.fhir` (no I/O): what an HTTP status means, how a 400 on a narrowed search is retried,
how a Binary arrives (raw bytes or the FHIR JSON form), and when two URLs share an origin.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FHIR_JSON = "application/fhir+json"
# Search parameters that select the patient or shape the page; every other one narrows the query and
# may be dropped when a server rejects it (400).
_BASE_PARAMS = frozenset({"patient", "subject", "_count", "_sort", "_id"})


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass
class FetchResult:
    """Outcome of one prefetch-equivalent query. `error` is None on success."""

    query: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # unauthorized | forbidden | not-found | server-error | timeout | ...
    status: int | None = None
    pages: int = 0
    truncated: bool = False
    elapsed_ms: float = 0.0
    calls: int = 0
    dropped_params: tuple[str, ...] = ()  # narrowing parameters the server refused (400), retried without

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BinaryResult:
    """A fetched attachment: raw bytes and the server's Content-Type, or an error kind."""

    url: str
    content: bytes = b""
    content_type: str = ""
    error: str | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Failure(Exception):
    def __init__(self, kind: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status
        self.detail = detail


def check_status(status: int) -> None:
    if status in (401, 403):
        raise Failure("unauthorized" if status == 401 else "forbidden", status)
    if status in (404, 410):
        raise Failure("not-found", status)
    if 300 <= status < 400:
        raise Failure("redirect-refused", status)
    if status >= 500:
        raise Failure("server-error", status)
    if status not in (200, 400):  # 400: the body may name a search parameter the server refused
        raise Failure("unexpected-status", status)


def outcome_text(body: Any) -> str:
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    parts = []
    for issue in body.get("issue") or []:
        if isinstance(issue, dict):
            details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
            parts += [str(details.get("text") or ""), str(issue.get("diagnostics") or "")]
            parts += [str(e) for e in issue.get("expression") or []]
    return " ".join(parts)[:2000]


def without_narrowing(query: str, detail: str = "") -> tuple[str, tuple[str, ...]] | None:
    """The query without the narrowing parameter the server refused, or without all of them.

    A 400 OperationOutcome usually names the parameter ("Unknown search parameter: category"); when it
    does not, every narrowing parameter goes, so the retry is the plain patient search. None: nothing to drop.
    """
    path, _, qs = query.partition("?")
    pairs = parse_qsl(qs, keep_blank_values=True)
    narrowing = [k for k, _ in pairs if k.split(":")[0] not in _BASE_PARAMS]
    if not narrowing:
        return None
    named = [k for k in dict.fromkeys(narrowing) if k.split(":")[0] in detail]
    drop = set(named or narrowing)
    kept = [(k, v) for k, v in pairs if k not in drop]
    return f"{path}?{urlencode(kept, safe='|,:/')}", tuple(sorted(drop))


def read_binary_body(raw: bytes, content_type: str, max_bytes: int) -> tuple[bytes, str]:
    """Bytes and content type of an attachment body: native (raw) or the FHIR Binary JSON form."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in (FHIR_JSON, "application/json", "application/json+fhir"):
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise Failure("invalid-json", 200) from exc
        if not isinstance(body, dict) or body.get("resourceType") != "Binary":
            raise Failure("not-a-binary", 200)
        data = body.get("data")
        if not isinstance(data, str):
            raise Failure("empty", 200)
        try:
            content = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise Failure("corrupt", 200) from exc
        raw, content_type = content, str(body.get("contentType") or "")
    if len(raw) > max_bytes:
        raise Failure("response-too-large", 200)
    return raw, content_type


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, base: str) -> bool:
    """Same scheme, host and port (an explicit default port is the same origin as none)."""
    try:
        a, b = urlsplit(url), urlsplit(base)
        ports = (a.port or _DEFAULT_PORTS.get(a.scheme), b.port or _DEFAULT_PORTS.get(b.scheme))
    except ValueError:  # a malformed port
        return False
    return (a.scheme.lower(), a.hostname) == (b.scheme.lower(), b.hostname) and ports[0] == ports[1]
