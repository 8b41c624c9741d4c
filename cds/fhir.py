"""The FHIR fallback: parallel, deadline-bounded reads, searches and Binary fetches against the EHR's server.

One pooled `requests.Session` per app; one `Deadline` per hook call. Independent queries run in
parallel on a shared thread pool, so N missing prefetch keys cost about one round trip, not N.
Each call is isolated from the others (issue 12):
- its deadline bounds every whole response, not each read: `cds.transfer.Watchdog` shuts down the
  sockets of a transfer still running at the deadline, so a server that drips bytes cannot keep a pool
  thread (or the connection) past the call that asked for it;
- one call runs at most `per_call_parallel` requests at a time, whatever it asks for;
- bodies are capped per response (after decompression: urllib3 >= 2.6 decodes at most what is asked
  for) and the bytes buffered by all fetches of the worker share one `ByteBudget`.
Every failure mode (401/403/404/5xx, timeouts, invalid JSON, OperationOutcome, oversize bodies)
becomes a result with an error kind; nothing here raises into the request handler.
The bearer token is passed per call and never stored or logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any, TypeVar
from urllib.parse import urljoin

import requests

from cds import metrics
from cds.fhir_wire import (
    FHIR_JSON,
    BinaryResult,
    Deadline,
    Failure,
    FetchResult,
    check_status,
    outcome_text,
    read_binary_body,
    same_origin,
    without_narrowing,
)
from cds.logs import log
from cds.netguard import ForbiddenAddress, GuardedAdapter, NetGuard
from cds.transfer import BudgetExceeded, ByteBudget, Watchdog

__all__ = ["BinaryResult", "Deadline", "FetchResult", "FhirClient", "same_origin", "without_narrowing"]

logger = logging.getLogger("cds.fhir")
_CHUNK = 65536
T = TypeVar("T")


class FhirClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        max_pages: int = 10,
        page_size: int | None = 200,
        max_response_bytes: int = 8 * 1024 * 1024,
        max_buffered_bytes: int = 32 * 1024 * 1024,
        workers: int = 16,
        per_call_parallel: int = 8,
        session: requests.Session | None = None,
        guard: NetGuard | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pages = max_pages
        self.page_size = page_size
        self.max_response_bytes = max_response_bytes
        self.per_call_parallel = max(1, per_call_parallel)
        self.budget = ByteBudget(max_buffered_bytes)
        self.watchdog = Watchdog()
        self.guard = guard or NetGuard()
        self.session = session or requests.Session()
        adapter = GuardedAdapter(self.guard, pool_connections=workers, pool_maxsize=workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.watchdog.close()
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
        jobs: dict[str, Callable[[], FetchResult]] = {
            key: (lambda q=q: self._run(base, q, token, deadline, None)) for key, q in queries.items()
        }
        for key, url in (next_urls or {}).items():
            jobs[key] = lambda url=url: self._run(base, "", token, deadline, url)
        done = self._execute(jobs, deadline)
        return {key: done.get(key) or FetchResult(queries.get(key, "next"), error="timeout") for key in jobs}

    def fetch_binaries(
        self,
        urls: Mapping[str, tuple[str, str]],
        *,
        token: str | None,
        deadline: Deadline,
        max_bytes: int,
    ) -> dict[str, BinaryResult]:
        """Fetch attachments in parallel: key -> (absolute URL, expected content type or "").

        Accept asks for the native form first and the FHIR Binary JSON form second; `read_binary_body`
        turns either into bytes. `max_bytes` caps each attachment (the JSON form carries base64, 4/3 larger).
        """
        jobs: dict[str, Callable[[], BinaryResult]] = {
            key: (lambda u=url, t=ctype: self._binary(u, t, token, deadline, max_bytes))
            for key, (url, ctype) in urls.items()
        }
        done = self._execute(jobs, deadline)
        return {key: done.get(key) or BinaryResult(urls[key][0], error="timeout") for key in jobs}

    # -- per-call execution ------------------------------------------------------------------------

    def _execute(self, jobs: Mapping[str, Callable[[], T]], deadline: Deadline) -> dict[str, T]:
        """Run a call's jobs on at most `per_call_parallel` pool threads; wait no longer than the deadline.

        Runners take jobs from the call's own queue, so a call with 200 reads never holds more than its
        share of the pool, and after the deadline queued jobs are not started at all.
        """
        queue = deque(jobs.items())
        results: dict[str, T] = {}
        lock = threading.Lock()

        def runner() -> None:
            while not deadline.expired:
                with lock:
                    if not queue:
                        return
                    key, job = queue.popleft()
                results[key] = job()

        runners = [self._pool.submit(runner) for _ in range(min(self.per_call_parallel, len(queue)))]
        # The watchdog cuts every transfer at the deadline; the margin lets runners record that.
        wait_futures(runners, timeout=deadline.remaining() + 0.25)
        for future in runners:
            future.cancel()
        return dict(results)

    # -- searches and reads -------------------------------------------------------------------------

    def _run(
        self, base: str, query: str, token: str | None, deadline: Deadline, start_url: str | None
    ) -> FetchResult:
        started = time.perf_counter()
        result = FetchResult(query)
        is_read = "?" not in query and query.count("/") == 1
        if not is_read and not start_url and self.page_size and "_count=" not in query:
            # Servers page at 20 by default: 200 Observations would be 10 sequential round trips.
            query = f"{query}{'&' if '?' in query else '?'}_count={self.page_size}"
        try:
            try:
                self._pages(base, query, start_url, token, deadline, result, is_read)
            except Failure as failure:
                narrower = None if start_url or is_read or failure.kind != "bad-request" else query
                retry = without_narrowing(narrower, failure.detail) if narrower else None
                if retry is None:
                    raise
                query, dropped = retry
                result.dropped_params = dropped
                log(
                    logger,
                    logging.WARNING,
                    "fhir.narrowing_refused",
                    resource=query.split("?")[0],
                    dropped=list(dropped),
                    reason="400 on a narrowed search: retried once without these parameters",
                )
                result.resources.clear()
                self._pages(base, query, None, token, deadline, result, is_read)
        except Failure as failure:
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

    def _pages(
        self,
        base: str,
        query: str,
        start_url: str | None,
        token: str | None,
        deadline: Deadline,
        result: FetchResult,
        is_read: bool,
    ) -> None:
        url: str | None = start_url or urljoin(base.rstrip("/") + "/", query)
        while url:
            if result.pages >= self.max_pages:
                result.truncated = True
                break
            result.calls += 1
            result.pages += 1
            body = self._get_json(url, token, deadline)
            if body is None:  # read of a resource that does not exist: no data
                break
            url = self._collect(body, result, base)
            if is_read:
                break

    def _collect(self, body: dict[str, Any], result: FetchResult, base: str) -> str | None:
        rtype = body.get("resourceType")
        if rtype == "OperationOutcome":
            raise Failure("operation-outcome")
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

    def _get_json(self, url: str, token: str | None, deadline: Deadline) -> dict[str, Any] | None:
        status, _, raw, reserved = self._get(url, token, deadline, FHIR_JSON, self.max_response_bytes)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            if status == 400:
                raise Failure("bad-request", status) from exc
            raise Failure("invalid-json", status) from exc
        finally:
            del raw
            self.budget.release(reserved)
        if status == 400:
            raise Failure("bad-request", status, outcome_text(body))
        if not isinstance(body, dict):
            raise Failure("invalid-json", status)
        return body

    def _binary(
        self, url: str, content_type: str, token: str | None, deadline: Deadline, max_bytes: int
    ) -> BinaryResult:
        accept = f"{content_type}, {FHIR_JSON};q=0.9, */*;q=0.8" if content_type else f"*/*, {FHIR_JSON}"
        started = time.perf_counter()
        try:
            status, ctype, raw, reserved = self._get(url, token, deadline, accept, max_bytes * 4 // 3 + 4096)
            self.budget.release(reserved)  # the bytes are read into text right after, in this call
            if status != 200:
                raise Failure("unexpected-status", status)
            content, ctype = read_binary_body(raw, ctype, max_bytes)
            result = BinaryResult(url, content, ctype, status=status)
        except Failure as failure:
            result = BinaryResult(url, error=failure.kind, status=failure.status)
        metrics.observe_fhir("Binary", result.error, time.perf_counter() - started, 1)
        return result

    # -- one HTTP exchange -------------------------------------------------------------------------

    def _get(
        self, url: str, token: str | None, deadline: Deadline, accept: str, max_bytes: int
    ) -> tuple[int, str, bytes, int]:
        """(status, content type, body, bytes reserved in the budget: the caller releases them)."""
        if deadline.expired:
            raise Failure("timeout")
        if self.guard.refuse(url):
            raise Failure("forbidden-address")
        headers = {"Accept": accept}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with self.watchdog.watch(deadline.expires) as transfer:
            try:
                remaining = deadline.remaining()
                response = self.session.get(
                    url,
                    headers=headers,
                    timeout=(min(self.connect_timeout, remaining), min(self.read_timeout, remaining)),
                    allow_redirects=False,
                    stream=True,
                )
            except ForbiddenAddress as exc:
                raise Failure("forbidden-address") from exc
            except requests.RequestException as exc:
                cut = transfer.cut or isinstance(exc, requests.Timeout)
                raise Failure("timeout" if cut else "connection-error") from exc
            try:
                status = response.status_code
                check_status(status)
                raw, reserved = self._body(response, deadline, max_bytes)
                if transfer.cut:  # shut down mid-headers or mid-body: what arrived is a fragment
                    self.budget.release(reserved)
                    raise Failure("timeout", status)
            except BaseException:
                response.raw.close()  # never hand a half-read or shut-down connection back to the pool
                raise
            response.close()
        return status, response.headers.get("Content-Type", ""), raw, reserved

    def _body(self, response: requests.Response, deadline: Deadline, max_bytes: int) -> tuple[bytes, int]:
        """The body, decompressed, capped at `max_bytes` and reserved in the worker's byte budget."""
        status = response.status_code
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes and "Content-Encoding" not in response.headers:
            raise Failure("response-too-large", status)
        raw = bytearray()
        reserved = 0
        try:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                if len(raw) + len(chunk) > max_bytes:
                    raise Failure("response-too-large", status)
                self.budget.reserve(len(chunk), deadline.expires)
                reserved += len(chunk)
                raw.extend(chunk)
                if deadline.expired:
                    raise Failure("timeout", status)
        except BudgetExceeded as exc:
            self.budget.release(reserved)
            raise Failure("memory-budget", status) from exc
        except Failure:
            self.budget.release(reserved)
            raise
        except requests.RequestException as exc:
            self.budget.release(reserved)
            raise Failure("timeout" if deadline.expired else "connection-error", status) from exc
        return bytes(raw), reserved
