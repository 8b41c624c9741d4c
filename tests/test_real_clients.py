"""What real CDS clients send and what the service logs when it refuses them.

- The Da Vinci CRD Request Generator sends `fhirAuthorization` with an empty (or absent) `access_token`
  when its FHIR server is open: that is no authorization, logged as a warning, never a 400.
- Every refused hook call or feedback post logs `hook.rejected` / `feedback.rejected` with its reason,
  whatever stage refused it (body parsing, validation, content type, size, unknown service).
- Log lines of the development server are JSON without terminal colour codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
import responses

from cds.app import create_app
from tests.builders import FHIR, ROOT, make_test_services, post, pv_request, searchset, settings

PATIENT = {"resourceType": "Patient", "id": "p1"}
# Exactly what the generator's buildRequest() puts in every call (token = {access_token: ""}).
CRD_AUTHORIZATION = {
    "access_token": "",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/Patient.read patient/Observation.read",
    "subject": "cds-service4",
}


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def app(tmp_path):
    return create_app(settings(data_dir=tmp_path), services=make_test_services())


@pytest.mark.parametrize(
    "authorization",
    [
        CRD_AUTHORIZATION,
        {**CRD_AUTHORIZATION, "access_token": "   "},
        {k: v for k, v in CRD_AUTHORIZATION.items() if k != "access_token"},  # JSON.stringify(undefined)
        {"access_token": ""},  # nothing else either: still nothing to send
    ],
    ids=["empty", "blank", "absent", "empty-alone"],
)
@responses.activate
def test_a_blank_access_token_is_no_authorization_with_a_warning(app, capsys, authorization):
    responses.get(f"{FHIR}/Condition", json=searchset())
    body = pv_request({"patient": PATIENT, "observations": None}, fhirServer=FHIR)
    body["fhirAuthorization"] = authorization
    r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 200, r.get_json()
    assert "Authorization" not in responses.calls[0].request.headers
    warnings = [e for e in events(capsys.readouterr().out) if e["event"] == "hook.accepted_with_warning"]
    assert [w["warning"] for w in warnings] == ["fhirAuthorization-blank-access-token"]
    assert warnings[0]["level"] == "warning" and warnings[0]["hookInstance"] == body["hookInstance"]


def test_a_real_token_with_a_wrong_type_is_still_refused(app):
    body = pv_request({}, fhirServer=FHIR)
    body["fhirAuthorization"] = {**CRD_AUTHORIZATION, "access_token": "t", "token_type": "MAC"}
    r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 400 and "Bearer" in r.get_json()["message"]


REFUSED = [
    ("validation", lambda c: post(c, "test-patient-view", {**pv_request({}), "hook": "order-sign"}), 400),
    (
        "malformed json",
        lambda c: c.post("/cds-services/test-patient-view", data="{", content_type="application/json"),
        400,
    ),
    (
        "content type",
        lambda c: c.post("/cds-services/test-patient-view", data="{}", content_type="text/plain"),
        415,
    ),
    ("unknown service", lambda c: post(c, "no-such-service", pv_request({})), 404),
    (
        "too large",
        lambda c: c.post("/cds-services/test-patient-view", data="x" * 2048, content_type="application/json"),
        413,
    ),
]


@pytest.mark.parametrize("name,send,status", REFUSED, ids=[r[0] for r in REFUSED])
def test_every_refused_hook_call_logs_hook_rejected_with_its_reason(tmp_path, capsys, name, send, status):
    app = create_app(settings(data_dir=tmp_path, max_body_bytes=1024), services=make_test_services())
    r = send(app.test_client())
    assert r.status_code == status
    rejected = [e for e in events(capsys.readouterr().out) if e["event"] == "hook.rejected"]
    assert len(rejected) == 1, rejected
    [entry] = rejected
    assert entry["status"] == status and entry["reason"] == r.get_json()["error"]
    assert entry["message"] == r.get_json()["message"][:300]


def test_validation_rejection_names_the_field_and_the_call(app, capsys):
    body = pv_request({})
    body["context"] = {"userId": "dr1", "patientId": "p1"}
    assert post(app.test_client(), "test-patient-view", body).status_code == 400
    [entry] = [e for e in events(capsys.readouterr().out) if e["event"] == "hook.rejected"]
    assert "context.userId" in entry["message"] and entry["hookInstance"] == body["hookInstance"]
    assert entry["service"] == "test-patient-view"


def test_refused_feedback_logs_feedback_rejected_with_its_reason(app, capsys):
    client = app.test_client()
    bad = {"feedback": [{"card": "c1", "outcome": "maybe", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}
    assert client.post("/cds-services/test-patient-view/feedback", json=bad).status_code == 400
    wrong_type = client.post("/cds-services/test-patient-view/feedback", data="{}", content_type="text/plain")
    assert wrong_type.status_code == 415
    rejected = [e for e in events(capsys.readouterr().out) if e["event"] == "feedback.rejected"]
    assert [(e["status"], e["reason"]) for e in rejected] == [
        (400, "invalid-feedback"),
        (415, "unsupported-media-type"),
    ]
    assert "cds-fb-1" in rejected[0]["message"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_development_server_logs_are_json_lines_without_colour_codes(tmp_path):
    """`cds serve` (werkzeug) colours its access lines for a terminal; ours are JSON with no escapes."""
    port = _free_port()
    env = {**os.environ, "CDS_DATA_DIR": str(tmp_path), "CDS_HASH_KEY": "k", "PYTHONUNBUFFERED": "1"}
    env.pop("CDS_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hooks.app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.1)
        bad = requests.post(f"{base}/cds-services/l5-radiculopathy-patient-view?x=1", json={}, timeout=5)
        assert bad.status_code == 400
        assert requests.get(f"{base}/no-such-page", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = log.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\\u001b" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    access = [e for e in parsed if e["event"] == "http.access"]
    assert {(e["method"], e["path"], e["status"]) for e in access} >= {
        ("POST", "/cds-services/l5-radiculopathy-patient-view", 400),
        ("GET", "/no-such-page", 404),
    }
    assert any(e["event"] == "hook.rejected" and e["status"] == 400 for e in parsed)
