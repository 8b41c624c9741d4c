"""/metrics, /readyz and what the pipeline records: every assertion is on a counter's change."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import responses
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from cds import metrics
from cds.health import readiness
from tests.builders import FHIR, condition, post, pv_request, searchset

ROOT = Path(__file__).resolve().parent.parent
AUTH = {
    "access_token": "tok",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "spine-cds",
}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def full_prefetch() -> dict[str, Any]:
    return {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": searchset(condition("c1", "M54.17")),
        "observations": searchset(),
    }


def test_metrics_endpoint_serves_prometheus_text_with_our_families(client) -> None:
    samples = scrape(client)
    names = {name for name, _ in samples}
    # Histograms and counters appear once they have a labelled child; the HELP lines are always there.
    text = client.get("/metrics").get_data(as_text=True)
    for family in (
        "cds_hook_request_duration_seconds",
        "cds_cards_total",
        "cds_prefetch_keys_total",
        "cds_fhir_query_duration_seconds",
        "cds_http_errors_total",
        "cds_auth_rejected_total",
    ):
        assert f"# HELP {family}" in text
    assert names  # parseable


def test_hook_call_records_duration_cards_and_prefetch_hits(client) -> None:
    labels = {"service": "test-patient-view", "hook": "patient-view", "outcome": "ok"}
    before = value("cds_hook_request_duration_seconds_count", **labels)
    cards = value("cds_cards_total", service="test-patient-view", rule="count", indicator="info")
    hits = value("cds_prefetch_keys_total", service="test-patient-view", key="conditions", result="hit")
    assert post(client, "test-patient-view", pv_request(full_prefetch())).status_code == 200
    assert value("cds_hook_request_duration_seconds_count", **labels) == before + 1
    assert value("cds_cards_total", service="test-patient-view", rule="count", indicator="info") == cards + 1
    assert (
        value("cds_prefetch_keys_total", service="test-patient-view", key="conditions", result="hit")
        == hits + 1
    )
    # and the scrape shows the same number the registry holds
    key = ("cds_hook_request_duration_seconds_count", tuple(sorted(labels.items())))
    assert scrape(client)[key] == before + 1


@responses.activate
def test_fhir_fallback_records_a_miss_and_the_query(client) -> None:
    responses.get(f"{FHIR}/Condition", json=searchset(condition("c9", "M51.16")))
    miss = value("cds_prefetch_keys_total", service="test-patient-view", key="conditions", result="miss")
    queries = value("cds_fhir_query_duration_seconds_count", resource="Condition", outcome="ok")
    pages = value("cds_fhir_requests_total", resource="Condition")
    body = pv_request(
        {"patient": {"resourceType": "Patient", "id": "p1"}, "observations": None},
        fhirServer=FHIR,
        fhirAuthorization=AUTH,
    )
    assert post(client, "test-patient-view", body).status_code == 200
    assert (
        value("cds_prefetch_keys_total", service="test-patient-view", key="conditions", result="miss")
        == miss + 1
    )
    assert value("cds_fhir_query_duration_seconds_count", resource="Condition", outcome="ok") == queries + 1
    assert value("cds_fhir_requests_total", resource="Condition") == pages + 1


@responses.activate
def test_failed_fhir_query_is_counted_by_error_kind_and_the_rejection_by_outcome(client) -> None:
    responses.get(f"{FHIR}/Condition", status=503)
    failed = value("cds_fhir_query_duration_seconds_count", resource="Condition", outcome="server-error")
    rejected = value(
        "cds_hook_request_duration_seconds_count",
        service="test-patient-view",
        hook="patient-view",
        outcome="rejected",
    )
    errors = value("cds_http_errors_total", endpoint="/cds-services/<service_id>", status="412")
    body = pv_request(
        {"patient": {"resourceType": "Patient", "id": "p1"}, "observations": None},
        fhirServer=FHIR,
        fhirAuthorization=AUTH,
    )
    assert post(client, "test-patient-view", body).status_code == 412
    assert (
        value("cds_fhir_query_duration_seconds_count", resource="Condition", outcome="server-error")
        == failed + 1
    )
    assert (
        value(
            "cds_hook_request_duration_seconds_count",
            service="test-patient-view",
            hook="patient-view",
            outcome="rejected",
        )
        == rejected + 1
    )
    assert value("cds_http_errors_total", endpoint="/cds-services/<service_id>", status="412") == errors + 1


def test_errors_are_counted_by_route_rule_and_status_not_by_raw_path(client) -> None:
    before = value("cds_http_errors_total", endpoint="/cds-services/<service_id>", status="404")
    unmatched = value("cds_http_errors_total", endpoint="unmatched", status="404")
    for name in ("nope-1", "nope-2", "nope-3"):
        assert post(client, name, pv_request()).status_code == 404
    assert client.get("/no/such/path/at/all").status_code == 404
    assert value("cds_http_errors_total", endpoint="/cds-services/<service_id>", status="404") == before + 3
    assert value("cds_http_errors_total", endpoint="unmatched", status="404") == unmatched + 1
    assert value("cds_http_errors_total", endpoint="/cds-services/nope-1", status="404") == 0


def test_auth_rejected_counts_by_reason_and_sanitizes_the_label() -> None:
    before = value("cds_auth_rejected_total", reason="expired")
    metrics.auth_rejected("expired")
    metrics.auth_rejected("expired")
    assert value("cds_auth_rejected_total", reason="expired") == before + 2
    metrics.auth_rejected('bad"reason\n{x}' + "y" * 100)
    assert value("cds_auth_rejected_total", reason="bad_reason__x_" + "y" * 26) >= 1


def test_readyz_reports_config_and_database(client, app) -> None:
    response = client.get("/readyz")
    body = response.get_json()
    assert body["checks"]["config"] == "ok"
    assert response.status_code == (200 if body["checks"]["database"] in ("ok", "not-configured") else 503)


class _Store:
    def __init__(self, ok: bool | Exception) -> None:
        self.ok = ok

    def ping(self) -> bool:
        if isinstance(self.ok, Exception):
            raise self.ok
        return self.ok


@pytest.mark.parametrize(
    ("store", "ready", "database"),
    [
        (None, True, "not-configured"),
        (_Store(True), True, "ok"),
        (_Store(False), False, "error"),
        (_Store(ConnectionError("refused to 10.0.0.5")), False, "error"),
    ],
)
def test_readiness_follows_the_store(app, store, ready, database) -> None:
    state = app.extensions["cds"]
    fake = type("State", (), {"settings": state.settings, "registry": state.registry, "store": store})()
    assert readiness(fake) == (ready, {"config": "ok", "database": database})


def test_readyz_answers_503_json_when_the_database_is_down(client, app) -> None:
    app.extensions["cds"].store = _Store(ConnectionError("password=hunter2 host=db"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"config": "ok", "database": "error"},
        "knowledge": {},
    }
    assert "hunter2" not in response.get_data(as_text=True)


def test_multiprocess_mode_merges_the_workers_values(tmp_path: Path) -> None:
    """Two processes (as two gunicorn workers) count into one directory; a third renders the sum."""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    worker = "from cds import metrics\nfor _ in range({n}):\n    metrics.auth_rejected('expired')\n"
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", worker.format(n=n)], cwd=ROOT, env=env, check=True, timeout=60)
    render = textwrap.dedent(
        """
        import sys
        from cds import metrics
        body, ctype = metrics.render()
        sys.stdout.write(ctype + "\\n" + body.decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", render],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    ctype, _, text = out.partition("\n")
    assert ctype.startswith("text/plain")
    samples = {
        (s.name, json.dumps(s.labels, sort_keys=True)): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("cds_auth_rejected_total", json.dumps({"reason": "expired"}))] == 7
    assert len(list(directory.glob("*.db"))) >= 2
