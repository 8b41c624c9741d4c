"""HTTP endpoints: discovery, service invocation and health."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from cds.request import HookError

blueprint = Blueprint("cds", __name__)
_JSON_TYPES = {"application/json", "application/fhir+json"}
_GC_PAUSE_BYTES = 256 * 1024


def state() -> Any:
    return current_app.extensions["cds"]


def json_body() -> Any:
    if request.mimetype not in _JSON_TYPES:
        raise HookError(415, "Content-Type must be application/json", code="unsupported-media-type")
    raw = request.get_data(cache=False)
    # A multi-megabyte prefetch decodes into millions of objects. With the cyclic GC running, every
    # allocation burst of the rest of the call rescans them all, for nothing: JSON holds no cycles and the
    # call frees them by reference counting. So the GC pauses for a large call and resumes at teardown.
    if len(raw) > _GC_PAUSE_BYTES and gc.isenabled():
        gc.disable()
        g.gc_paused = True
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HookError(400, "request body is not valid JSON", code="malformed-json") from exc


@blueprint.teardown_app_request
def _resume_gc(_exc: BaseException | None) -> None:
    if g.pop("gc_paused", False):
        gc.enable()


@blueprint.get("/cds-services")
def discovery():
    return jsonify(state().registry.discovery())


@blueprint.post("/cds-services/<service_id>")
def invoke(service_id: str):
    service = state().registry.get(service_id)
    if service is None:
        raise HookError(404, f"unknown service {service_id[:80]!r}", code="unknown-service")
    outcome = state().engine.evaluate(service, json_body(), caller=g.get("caller"))
    from cds.feedback import record_served  # audit of served cards, queued off the request path

    record_served(service.id, outcome)
    return jsonify(outcome.body)


@blueprint.get("/openapi.yaml")
def openapi():
    text = (Path(__file__).parent / "openapi.yaml").read_text(encoding="utf-8")
    return Response(text, mimetype="application/yaml")


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok", "services": len(state().registry)})


@blueprint.get("/readyz")
def readyz():
    """Readiness: configuration loaded and, when an audit store is configured, its database reachable."""
    from cds.health import readiness

    ready, checks = readiness(state())
    response = jsonify({"status": "ok" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics():
    """Prometheus text; under gunicorn, merged across the pod's workers (cds.metrics)."""
    from cds.metrics import render

    body, content_type = render()
    return Response(body, content_type=content_type)
