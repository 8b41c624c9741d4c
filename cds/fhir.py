"""The FHIR fallback: parallel, deadline-bounded reads and searches against the EHR's FHIR server.

One pooled `requests.Session` per app; one `Deadline` per hook call. Independent queries run in
parallel on a shared thread pool, so N missing prefetch keys cost about one round trip, not N.
Every failure mode (401/403/404/5xx, timeouts, invalid JSON, OperationOutcome, oversize bodies)
becomes a `FetchResult` with an error kind; nothing here raises into the request handler.
The bearer token is passed per call and never stored or logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from cds import metrics
from cds.logs import log
from cds.netguard import ForbiddenAddress, GuardedAdapter, NetGuard

logger = logging.getLogger("cds.fhir")
FHIR_JSON = "application/fhir+json"


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

    @property
    def ok(self) -> bool:
        return self.error is None


class _Failure(Exception):
    def __init__(self, kind: str, status: int | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status


class FhirClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        max_pages: int = 10,
        page_size: int | None = 200,
        max_response_bytes: int = 20 * 1024 * 1024,
        workers: int = 16,
        session: requests.Session | None = None,
        guard: NetGuard | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pages = max_pages
        self.page_size = page_size
        self.max_response_bytes = max_response_bytes
        self.guard = guard or NetGuard()
        self.session = session or requests.Session()
        adapter = GuardedAdapter(self.guard, pool_connections=workers, pool_maxsize=workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    # -- public API -------------------------------------------------------------------------------

    def fetch_all(
        self,
        base: str,
        queries: Mapping[str, str],
        *,
        token: str | None,
        deadline: Deadline,
        next_urls: Mapping[str, str] | None = None,
    ) -> dict[str, FetchResult]:
        """Run every query in parallel; a query is a relative read/search or (via next_urls) a page URL."""
        futures = {
            key: self._pool.submit(self._run, base, q, token, deadline, None) for key, q in queries.items()
        }
        for key, url in (next_urls or {}).items():
            futures[key] = self._pool.submit(self._run, base, "", token, deadline, url)
        results: dict[str, FetchResult] = {}
        for key, future in futures.items():
            try:
                results[key] = future.result(timeout=deadline.remaining() + 0.05)
            except FutureTimeout:
                future.cancel()
                results[key] = FetchResult(queries.get(key, "next"), error="timeout")
        return results

    # -- internals --------------------------------------------------------------------------------

    def _run(
        self, base: str, query: str, token: str | None, deadline: Deadline, start_url: str | None
    ) -> FetchResult:
        started = time.perf_counter()
        result = FetchResult(query)
        is_read = "?" not in query and query.count("/") == 1
        if not is_read and not start_url and self.page_size and "_count=" not in query:
            # Servers page at 20 by default: 200 Observations would be 10 sequential round trips.
            query = f"{query}{'&' if '?' in query else '?'}_count={self.page_size}"
        url: str | None = start_url or urljoin(base.rstrip("/") + "/", query)
        try:
            while url:
                if result.pages >= self.max_pages:
                    result.truncated = True
                    break
                body = self._get(url, token, deadline)
                result.calls += 1
                result.pages += 1
                if body is None:  # read of a resource that does not exist: no data
                    break
                url = self._collect(body, result, base)
                if is_read:
                    break
        except _Failure as failure:
            result.error, result.status = failure.kind, failure.status
            if failure.kind == "not-found" and is_read:
                result.error = None
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        log(
            logger,
            logging.DEBUG,
            "fhir.query",
            resource=query.split("?")[0].split("/")[0] or "page",
            status=result.status,
            error=result.error,
            pages=result.pages,
            ms=round(result.elapsed_ms, 1),
        )
        metrics.observe_fhir(query, result.error, result.elapsed_ms / 1000, result.calls)
        return result

    def _collect(self, body: dict[str, Any], result: FetchResult, base: str) -> str | None:
        rtype = body.get("resourceType")
        if rtype == "OperationOutcome":
            raise _Failure("operation-outcome")
        if rtype != "Bundle":
            result.resources.append(body)
            return None
        for entry in body.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
                result.resources.append(resource)
        for link in body.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                if same_origin(link["url"], base):
                    return link["url"]
                log(logger, logging.WARNING, "fhir.next_link_refused", reason="different origin")
                result.truncated = True
        return None

    def _get(self, url: str, token: str | None, deadline: Deadline) -> dict[str, Any] | None:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _Failure("timeout")
        if self.guard.refuse(url):
            raise _Failure("forbidden-address")
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.session.get(
                url,
                headers=headers,
                timeout=(min(self.connect_timeout, remaining), min(self.read_timeout, remaining)),
                allow_redirects=False,
                stream=True,
            )
        except ForbiddenAddress as exc:
            raise _Failure("forbidden-address") from exc
        except requests.Timeout as exc:
            raise _Failure("timeout") from exc
        except requests.RequestException as exc:
            raise _Failure("connection-error") from exc
        with response:
            status = response.status_code
            if status in (401, 403):
                raise _Failure("unauthorized" if status == 401 else "forbidden", status)
            if status in (404, 410):
                raise _Failure("not-found", status)
            if 300 <= status < 400:
                raise _Failure("redirect-refused", status)
            if status >= 500:
                raise _Failure("server-error", status)
            if status != 200:
                raise _Failure("unexpected-status", status)
            raw = bytearray()
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    raw.extend(chunk)
                    if len(raw) > self.max_response_bytes:
                        raise _Failure("response-too-large", status)
                    if deadline.expired:
                        raise _Failure("timeout", status)
            except requests.RequestException as exc:
                raise _Failure(
                    "timeout" if isinstance(exc, requests.Timeout) else "connection-error"
                ) from exc
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _Failure("invalid-json", status) from exc
        if not isinstance(body, dict):
            raise _Failure("invalid-json", status)
        return body


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
