"""Prometheus metrics: what an operator needs to see that the service is fast, correct and trusted.

Under gunicorn each worker is its own process, so with `PROMETHEUS_MULTIPROC_DIR` set (the deploy
config sets it) prometheus-client writes every value to a per-process file and `/metrics` merges
them: a scrape sees the whole pod, not whichever worker answered. Without it (`cds serve`, tests)
the ordinary in-process registry is used.

Label values are always from bounded sets (service ids from the registry, rule codes from the
knowledge files, FHIR resource types from prefetch templates, HTTP status codes), never from
caller input, so a caller cannot blow up the number of series.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Hook calls: the 500 ms CDS Hooks expectation sits between buckets 0.25 and 0.5.
_HOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FHIR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_LABEL = re.compile(r"[^A-Za-z0-9_.:/<>\-]")
_HIT_STATUSES = frozenset({"data", "paged"})

HOOK_DURATION = Histogram(
    "cds_hook_request_duration_seconds",
    "Time to answer a hook call, from the parsed body to the response body (seconds).",
    ["service", "hook", "outcome"],
    buckets=_HOOK_BUCKETS,
)
CARDS = Counter(
    "cds_cards_total",
    "Cards returned, by the rule that fired and its indicator.",
    ["service", "rule", "indicator"],
)
PREFETCH = Counter(
    "cds_prefetch_keys_total",
    "Prefetch keys per hook call: result=hit when the CDS client sent the data, miss when it did not.",
    ["service", "key", "result"],
)
FHIR_DURATION = Histogram(
    "cds_fhir_query_duration_seconds",
    "One FHIR fallback query (all its pages), by resource type and outcome (ok or the error kind).",
    ["resource", "outcome"],
    buckets=_FHIR_BUCKETS,
)
FHIR_REQUESTS = Counter(
    "cds_fhir_requests_total", "HTTP requests answered by the FHIR server (pages).", ["resource"]
)
HTTP_ERRORS = Counter(
    "cds_http_errors_total", "Responses with status >= 400, by endpoint and status.", ["endpoint", "status"]
)
AUTH_REJECTED = Counter(
    "cds_auth_rejected_total", "Hook calls refused by authentication, by reason.", ["reason"]
)


def _label(value: Any, limit: int = 64) -> str:
    """Keep label values short and printable even if a caller of this module passes something odd."""
    text = _LABEL.sub("_", str(value))[:limit]
    return text or "unknown"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def observe_hook(
    service: str,
    hook: str,
    seconds: float,
    *,
    outcome: str = "ok",
    prefetch_status: Mapping[str, str] | None = None,
    cards: Iterable[Any] = (),
) -> None:
    """One hook call. `prefetch_status` is the pipeline's per-key status ("data", "fetched", ...)."""
    HOOK_DURATION.labels(service, hook, _label(outcome)).observe(seconds)
    for key, status in (prefetch_status or {}).items():
        PREFETCH.labels(service, _label(key), "hit" if status in _HIT_STATUSES else "miss").inc()
    for card in cards:
        CARDS.labels(
            service, _label(getattr(card, "rule", None) or "none"), _label(getattr(card, "indicator", "info"))
        ).inc()


def observe_fhir(query: str, outcome: str | None, seconds: float, requests: int) -> None:
    """One FHIR fallback query; `query` is relative ("Condition?patient=..", "Patient/1") or "" for a page."""
    resource = query.split("?", 1)[0].split("/", 1)[0] or "page"
    FHIR_DURATION.labels(_label(resource, 40), _label(outcome or "ok")).observe(seconds)
    if requests:
        FHIR_REQUESTS.labels(_label(resource, 40)).inc(requests)


def http_error(endpoint: str | None, status: int) -> None:
    HTTP_ERRORS.labels(_label(endpoint or "unmatched"), str(int(status))).inc()


def auth_rejected(reason: str) -> None:
    """Called by the authenticator for every refused call; `reason` is a short code (e.g. "expired")."""
    AUTH_REJECTED.labels(_label(reason, 40)).inc()


def render() -> tuple[bytes, str]:
    """Prometheus text for the whole process group (multiprocess mode) or this process."""
    directory = multiprocess_dir()
    if directory and os.path.isdir(directory):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """gunicorn `child_exit`: fold a dead worker's live gauges away (counters and histograms persist)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def install(app: Any) -> None:
    """Count every response with status >= 400 by endpoint (the route rule, a bounded set) and status."""

    @app.after_request
    def _count_errors(response: Any) -> Any:
        if response.status_code >= 400:
            http_error(request.url_rule.rule if request.url_rule is not None else None, response.status_code)
        return response
