"""Caps that keep hostile input from hurting us, and logs that never leak secrets or patient data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import responses

from cds.app import create_app
from cds.parse import parse_one
from cds.registry import HookInput
from hooks.app import create_app as production_app
from tests.builders import (
    FIXTURES,
    condition,
    make_test_services,
    order_request,
    post,
    pv_request,
    searchset,
    service_request,
    settings,
)
from tests.test_auth import BASE, call, token, trusted_file

SCENARIO = FIXTURES / "scenarios" / "01-l5-no-mri.json"


def test_prefetch_entry_cap_is_413_with_clear_message():
    app = create_app(settings(max_prefetch_resources=50), services=make_test_services())
    body = pv_request(
        {
            "patient": None,
            "observations": None,
            "conditions": searchset(*[condition(f"c{i}", "M54.16") for i in range(51)]),
        }
    )
    r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 413 and "limit is 50" in r.get_json()["message"]


@responses.activate
def test_fhir_response_size_cap_is_a_clean_412():
    app = create_app(settings(fhir_max_response_bytes=10_000), services=make_test_services())
    responses.get(
        "https://ehr.example.org/fhir/Condition",
        json=searchset(*[condition(f"c{i}", "M54.16") for i in range(200)]),
    )
    body = pv_request({"patient": None, "observations": None}, fhirServer="https://ehr.example.org/fhir")
    r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 412 and "response-too-large" in r.get_json()["message"]


def test_huge_report_text_is_truncated_not_fatal():
    app = production_app(settings(clock=datetime(2026, 1, 15, tzinfo=UTC)))
    body = json.loads(SCENARIO.read_text())
    report = body["prefetch"]["reports"]["entry"][0]["resource"]
    report["conclusion"] = report["conclusion"] + " filler" * 400_000
    r = post(app.test_client(), "l5-radiculopathy-patient-view", body)
    assert r.status_code == 200
    assert {c["source"]["topic"]["code"] for c in r.get_json()["cards"]} == {"mri", "conservative-care"}


def test_logs_of_full_hook_calls_hold_no_token_jwt_patient_id_or_report_text(tmp_path, capsys):
    """A real service, a signed call, an access token and a patient id: none of them reach the logs."""
    body = json.loads(SCENARIO.read_text())
    patient = body["context"]["patientId"]
    access_token = "ya29.super-secret-access-token"
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
        "patient": patient,
    }
    app = production_app(
        settings(
            auth="required",
            trusted_clients=trusted_file(tmp_path),
            public_base_url=BASE,
            clock=datetime(2026, 1, 15, tzinfo=UTC),
        )
    )
    client = app.test_client()
    with responses.RequestsMock() as mock:
        mock.get("https://ehr.example.org/fhir/Encounter", json=searchset())
        del body["prefetch"]["encounters"]
        signed = token("/cds-services/l5-radiculopathy-patient-view")
        ok = call(client, signed, body, path="l5-radiculopathy-patient-view")
        assert ok.status_code == 200 and ok.get_json()["cards"]
        assert mock.calls[0].request.headers["Authorization"] == f"Bearer {access_token}"
    assert call(client, signed, body, path="l5-radiculopathy-patient-view").status_code == 401  # replay
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(e["event"] == "hook.call" for e in lines) and any(e["event"] == "auth.rejected" for e in lines)
    conclusion = body["prefetch"]["reports"]["entry"][0]["resource"]["conclusion"]
    for secret in (access_token, signed, signed.split(".")[1], patient, conclusion[:40], "denervation"):
        assert secret not in out, f"leaked into logs: {secret[:30]}"


def test_draft_orders_count_against_the_resource_cap():
    """Issue 12: 20,000 draft orders (23 MB) were counted against no limit and ran past the worker timeout."""
    app = create_app(settings(max_prefetch_resources=50), services=make_test_services())
    client = app.test_client()
    orders = [service_request(f"o{i}", "M47.816") for i in range(51)]
    r = post(
        client, "test-order-sign", order_request("order-sign", orders, prefetch={"conditions": searchset()})
    )
    assert r.status_code == 413 and r.get_json()["error"] == "prefetch-too-large"
    assert "draftOrders 51" in r.get_json()["message"] and "limit is 50" in r.get_json()["message"]
    # Prefetch and draft orders add up: 30 + 21 > 50, while 30 + 20 fits.
    conditions = searchset(*[condition(f"c{i}", "M54.16") for i in range(30)])
    over = order_request("order-sign", orders[:21], prefetch={"conditions": conditions})
    assert post(client, "test-order-sign", over).status_code == 413
    fits = order_request("order-sign", orders[:20], prefetch={"conditions": conditions})
    assert post(client, "test-order-sign", fits).status_code == 200


def test_references_resolve_through_one_index_draft_orders_first():
    """`HookInput.resolve` answers from an index built once per call (it scanned every resource per call)."""
    order = parse_one(service_request("x1", "M47.816"), "p1")
    other = parse_one(condition("x1", "M54.16"), "p1")
    inp = HookInput(
        hook="order-sign",
        hook_instance="i",
        patient_id="p1",
        user_id="Practitioner/1",
        now=datetime(2026, 1, 15, tzinfo=UTC),
        context={},
        resources={"Condition": [other, parse_one(condition("x1", "M99"), "p1")]},
        draft_orders=[order],
    )
    assert inp.resolve("ServiceRequest/x1") is order
    assert inp.resolve("Condition/x1") is other  # the first of two with one id, as before
    assert inp.resolve("Condition/nope") is None and inp.resolve("garbage") is None
