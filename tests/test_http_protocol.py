"""Transport-level behaviour: discovery, CORS, status codes and request validation."""

from __future__ import annotations

import json

import pytest

from cds.app import create_app
from cds.validator import validate_discovery
from tests.builders import (
    clone,
    condition,
    order_request,
    post,
    pv_request,
    searchset,
    service_request,
    settings,
)


def test_discovery_lists_registered_services_with_prefetch(client):
    body = client.get("/cds-services").get_json()
    assert validate_discovery(body) == []
    ids = {s["id"]: s for s in body["services"]}
    assert set(ids) == {"test-patient-view", "test-order-sign", "test-order-select", "test-crash"}
    assert ids["test-patient-view"]["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert ids["test-patient-view"]["hook"] == "patient-view"
    assert "prefetch" not in ids["test-crash"], "empty prefetch is omitted, never {}"


@pytest.mark.parametrize("path", ["/cds-services", "/cds-services/test-patient-view", "/healthz"])
def test_preflight_is_answered_without_auth(client, path):
    r = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
    assert {"GET", "POST", "OPTIONS"} <= {
        m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")
    }
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in r.headers["Access-Control-Allow-Headers"].lower()


def test_cors_origin_list_is_configurable():
    app = create_app(settings(cors_origins=["https://ehr.example.org"]), services=[])
    c = app.test_client()
    ok = c.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    bad = c.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert ok.headers.get("Access-Control-Allow-Origin") == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in bad.headers


def test_private_network_preflight_in_dev(client):
    r = client.options(
        "/cds-services",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert r.headers.get("Access-Control-Allow-Private-Network") == "true"


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json()["status"] == "ok"


def test_unknown_service_is_404(client):
    r = post(client, "nope", pv_request({}))
    assert r.status_code == 404 and r.get_json()["error"] == "unknown-service"


def test_wrong_method_is_405_json(client):
    r = client.get("/cds-services/test-patient-view")
    assert r.status_code == 405 and r.get_json()["status"] == 405
    r = client.delete("/cds-services")
    assert r.status_code == 405


def test_wrong_content_type_is_415(client):
    r = client.post("/cds-services/test-patient-view", data="hook=x", content_type="text/plain")
    assert r.status_code == 415 and "application/json" in r.get_json()["message"]


def test_body_over_limit_is_413():
    app = create_app(settings(max_body_bytes=2000), services=[])
    big = json.dumps(pv_request({"x": {"resourceType": "Basic", "text": "a" * 5000}}))
    r = app.test_client().post("/cds-services/anything", data=big, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["error"] == "request-entity-too-large"


def test_malformed_json_is_400(client):
    r = client.post("/cds-services/test-patient-view", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "malformed-json"


def test_deeply_nested_json_is_400_not_500(client):
    r = client.post("/cds-services/test-patient-view", data="[" * 100000, content_type="application/json")
    assert r.status_code == 400


BAD_BODIES = [
    ("not an object", [1, 2], "JSON object"),
    ("missing hook", {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": {}}, "hook"),
    ("wrong hook", {**pv_request({}), "hook": "order-sign"}, "does not match"),
    (
        "missing hookInstance",
        {k: v for k, v in pv_request({}).items() if k != "hookInstance"},
        "hookInstance",
    ),
    ("hookInstance not uuid", {**pv_request({}), "hookInstance": "123"}, "UUID"),
    ("context missing", {k: v for k, v in pv_request({}).items() if k != "context"}, "context"),
    ("context not object", {**pv_request({}), "context": "p1"}, "context"),
    ("patientId missing", {**pv_request({}), "context": {"userId": "Practitioner/1"}}, "patientId"),
    ("userId not a reference", {**pv_request({}), "context": {"userId": "dr1", "patientId": "p1"}}, "userId"),
    (
        "patientId not an id",
        {**pv_request({}), "context": {"userId": "Practitioner/1", "patientId": "a b"}},
        "patientId",
    ),
    (
        "auth without server",
        {
            **pv_request({}),
            "fhirAuthorization": {
                "access_token": "t",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds",
            },
        },
        "fhirServer is required",
    ),
    (
        "auth missing fields",
        {**pv_request({}), "fhirServer": "https://x.org/fhir", "fhirAuthorization": {"access_token": "t"}},
        "token_type",
    ),
    (
        "auth wrong type",
        {
            **pv_request({}),
            "fhirServer": "https://x.org/fhir",
            "fhirAuthorization": {
                "access_token": "t",
                "token_type": "MAC",
                "expires_in": 300,
                "scope": "s",
                "subject": "c",
            },
        },
        "Bearer",
    ),
    ("fhirServer not url", {**pv_request({}), "fhirServer": "file:///etc/passwd"}, "fhirServer"),
    ("prefetch not object", {**pv_request({}), "prefetch": []}, "prefetch"),
    ("prefetch value not resource", pv_request({"patient": "Patient/1"}), "prefetch.patient"),
]


@pytest.mark.parametrize("name,body,needle", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_invalid_requests_are_400_with_clear_message(client, name, body, needle):
    r = post(client, "test-patient-view", body)
    assert r.status_code == 400, r.get_json()
    assert needle in r.get_json()["message"]


ORDER_BAD = [
    ("draftOrders missing", lambda b: b["context"].pop("draftOrders"), "draftOrders"),
    (
        "draftOrders not bundle",
        lambda b: b["context"].update(draftOrders=[{"resourceType": "ServiceRequest"}]),
        "Bundle",
    ),
    ("entry not resource", lambda b: b["context"]["draftOrders"].update(entry=[{"x": 1}]), "FHIR resource"),
    ("userId is a patient", lambda b: b["context"].update(userId="Patient/1"), "userId"),
]


@pytest.mark.parametrize("name,mutate,needle", ORDER_BAD, ids=[b[0] for b in ORDER_BAD])
def test_order_sign_context_validation(client, name, mutate, needle):
    body = order_request("order-sign", [service_request("sr1")], prefetch={"conditions": searchset()})
    mutate(body)
    r = post(client, "test-order-sign", body)
    assert r.status_code == 400 and needle in r.get_json()["message"]


def test_non_order_entries_in_draft_orders_resolve_references_and_are_not_judged(client):
    """An EHR that sends the order's reason Condition inside draftOrders gets cards, not a 400."""
    order = service_request("sr1")
    order["reasonReference"] = [{"reference": "Condition/dx1"}]
    body = order_request("order-sign", [order], prefetch={"conditions": searchset()})
    reason = condition("dx1", "M54.16")
    body["context"]["draftOrders"]["entry"].append({"resource": reason})
    r = post(client, "test-order-sign", body)
    assert r.status_code == 200, r.get_json()
    assert [c["detail"] for c in r.get_json()["cards"]] == ["reasons: M54.16"], "one card: only the order"


def test_order_select_requires_selections_that_reference_draft_orders(client):
    orders = [service_request("sr1"), service_request("sr2")]
    r = post(client, "test-order-select", order_request("order-select", orders))
    assert r.status_code == 400 and "selections" in r.get_json()["message"]
    r = post(client, "test-order-select", order_request("order-select", orders, ["ServiceRequest/zzz"]))
    assert r.status_code == 400 and "not an entry of draftOrders" in r.get_json()["message"]
    r = post(client, "test-order-select", order_request("order-select", orders, ["ServiceRequest/sr2"]))
    assert r.status_code == 200
    assert [c["summary"] for c in r.get_json()["cards"]] == ["order sr2"]


def test_unknown_context_fields_and_extensions_are_tolerated(client):
    body = pv_request({"patient": None, "conditions": searchset(), "observations": None})
    body["context"]["futureField"] = {"a": 1}
    body["extension"] = {"com.example.x": True}
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200


def test_handler_crash_is_json_500_without_trace(client, capsys):
    r = post(client, "test-crash", pv_request({}))
    assert r.status_code == 500
    assert r.get_json() == {
        "error": "internal-error",
        "message": "the service failed to process this request",
        "status": 500,
    }
    out = capsys.readouterr().out
    assert "RuntimeError" in out and "p1" not in out.replace('"p1"', "")


def test_incomplete_draft_orders_are_repaired_not_dropped(client):
    """Drafts are often incomplete: a bad or missing status, intent or subject must not hide the order."""
    bad = clone(service_request("sr1"))
    bad["status"] = {"not": "a code"}
    sparse = clone(service_request("sr2"))
    for key in ("status", "intent", "subject"):
        sparse.pop(key)
    r = post(
        client,
        "test-order-sign",
        order_request("order-sign", [bad, sparse], prefetch={"conditions": searchset()}),
    )
    assert r.status_code == 200
    assert [c["summary"] for c in r.get_json()["cards"]] == ["order sr1", "order sr2"]
