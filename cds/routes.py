"""HTTP endpoints: discovery, service invocation and health."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, g, jsonify

from cds import metrics as prometheus
from cds.health import readiness
from cds.request import HookError
from cds.web import get_store, json_body, state

blueprint = Blueprint("cds", __name__)
SPEC_PATH = Path(__file__).parent / "openapi.yaml"


@blueprint.get("/cds-services")
def discovery():
    return jsonify(state().registry.discovery())


@blueprint.post("/cds-services/<service_id>")
def invoke(service_id: str):
    service = state().registry.get(service_id)
    if service is None:
        raise HookError(404, f"unknown service {service_id[:80]!r}", code="unknown-service")
    outcome = state().engine.evaluate(service, json_body(), caller=g.get("caller"))
    _audit(service.id, outcome)
    return jsonify(outcome.body)


def _audit(service_id: str, outcome) -> None:
    """Audit every card of a hook response (queued off the request path; never raises into the call)."""
    store = get_store()
    if store is None or not (outcome.cards or outcome.withheld):
        return
    request = outcome.request
    if outcome.cards:
        store.record_served(service_id, request.hook_instance, outcome.patient, outcome.cards)
    if outcome.withheld:
        store.record_suppressed(service_id, request.hook_instance, outcome.patient, outcome.withheld)


@blueprint.get("/openapi.yaml")
def openapi():
    text = SPEC_PATH.read_text(encoding="utf-8")
    return Response(text, mimetype="application/yaml")


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok", "services": len(state().registry)})


@blueprint.get("/readyz")
def readyz():
    """Readiness: configuration loaded and, when an audit store is configured, its database reachable; also
    the version of every knowledge file the services run on (what a CDS committee approved)."""
    ready, checks = readiness(state())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": checks,
        "knowledge": state().registry.knowledge(),
    }
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics():
    """Prometheus text; under gunicorn, merged across the pod's workers (cds.metrics)."""
    body, content_type = prometheus.render()
    return Response(body, content_type=content_type)
