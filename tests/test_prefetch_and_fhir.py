"""Prefetch semantics and the FHIR fallback: absent, null, OperationOutcome, paging, errors, deadline."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from cds.app import create_app
from cds.config import Settings
from cds.prefetch import TemplateError, check_template, render
from hooks.app import services
from tests.builders import (
    FHIR,
    condition,
    make_test_services,
    order_request,
    post,
    pv_request,
    searchset,
    service_request,
    settings,
)

TOKEN = "s3cr3t-access-token-value"
AUTH = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "spine-cds",
    "patient": "p1",
}
PATIENT = {"resourceType": "Patient", "id": "p1"}


def fhir_call(**kw):
    return {"fhirServer": FHIR, "fhirAuthorization": AUTH, **kw}


def detail(response) -> str:
    return response.get_json()["cards"][0]["detail"]


# -- templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.patientId}}",
        "Condition?patient={{context.patientId}}&category=problem-list-item",
        "Practitioner/{{userPractitionerId}}",
        "Encounter/{{context.encounterId}}",
        "Observation?patient={{ context.patientId }}&_count=100&_sort=-date",
    ],
)
def test_allowed_templates(template):
    check_template("k", template)


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.draftOrders.entry}}",  # nested path
        "Patient/{{context.selections}}",  # not a primitive
        "Patient/{{patientId}}",  # not context.
        "Patient/{{today()}}",  # 3.0 FHIRPath is not 2.0
        "https://evil.example.com/Patient/{{context.patientId}}",  # absolute URL
        "Patient/{{context.patientId}",  # unbalanced
    ],
)
def test_forbidden_templates(template):
    with pytest.raises(TemplateError):
        check_template("k", template)


def test_render_url_encodes_values_and_user_tokens():
    ctx = {"patientId": "a&b=c d", "userId": "Practitioner/x y"}
    assert render("Condition?patient={{context.patientId}}", ctx) == "Condition?patient=a%26b%3Dc%20d"
    assert render("Practitioner/{{userPractitionerId}}", ctx) == "Practitioner/x%20y"
    assert render("PractitionerRole/{{userPractitionerRoleId}}", ctx) is None  # wrong user type: no value
    assert render("Encounter/{{context.encounterId}}", ctx) is None


# -- prefetch semantics ------------------------------------------------------------------------


@responses.activate
def test_full_prefetch_makes_no_fhir_call(client):
    body = pv_request(
        {"patient": PATIENT, "conditions": searchset(condition("c1", "M54.17")), "observations": searchset()},
        **fhir_call(),
    )
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and detail(r).startswith("conditions: M54.17")
    assert len(responses.calls) == 0


@responses.activate
def test_absent_key_is_fetched_with_bearer_token_and_fhir_accept(client):
    responses.get(f"{FHIR}/Condition", json=searchset(condition("c9", "M51.16")))
    body = pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and "M51.16" in detail(r)
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.headers["Accept"] == "application/fhir+json"
    assert parse_qs(urlsplit(call.request.url).query) == {"patient": ["p1"], "_count": ["200"]}


@responses.activate
def test_null_and_empty_bundle_mean_no_data_and_are_not_refetched(client):
    body = pv_request({"patient": None, "conditions": searchset(), "observations": None}, **fhir_call())
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and detail(r).startswith("conditions: none")
    assert len(responses.calls) == 0


@responses.activate
def test_operation_outcome_in_prefetch_is_treated_as_absent(client):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    responses.get(f"{FHIR}/Condition", json=searchset(condition("c2", "G83.4")))
    oo_bundle = searchset(outcome)
    body = pv_request({"patient": PATIENT, "conditions": outcome, "observations": oo_bundle}, **fhir_call())
    responses.get(f"{FHIR}/Observation", json=searchset())
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and "G83.4" in detail(r)
    assert sorted(urlsplit(c.request.url).path for c in responses.calls) == [
        "/fhir/Condition",
        "/fhir/Observation",
    ]


@responses.activate
def test_paginated_prefetch_follows_next_link(client):
    page2 = f"{FHIR}/Condition?patient=p1&_page=2"
    responses.get(page2, json=searchset(condition("c2", "M54.16"), next_url=f"{FHIR}/Condition?_page=3"))
    responses.get(f"{FHIR}/Condition?_page=3", json=searchset(condition("c3", "M51.17")))
    body = pv_request(
        {
            "patient": PATIENT,
            "conditions": searchset(condition("c1", "M54.17"), next_url=page2),
            "observations": None,
        },
        **fhir_call(),
    )
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200
    assert detail(r).startswith("conditions: M51.17, M54.16, M54.17")


@responses.activate
def test_next_link_to_another_host_is_not_followed(client):
    body = pv_request(
        {
            "patient": PATIENT,
            "observations": None,
            "conditions": searchset(condition("c1", "M54.17"), next_url="https://attacker.example.com/steal"),
        },
        **fhir_call(),
    )
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and detail(r).startswith("conditions: M54.17;")
    assert len(responses.calls) == 0


@responses.activate
def test_fetch_follows_next_links_up_to_the_page_cap():
    app = create_app(settings(fhir_max_pages=3), services=make_test_services())
    for i in range(1, 6):
        responses.get(
            f"{FHIR}/Condition?patient=p1&page={i}" if i > 1 else f"{FHIR}/Condition?patient=p1&_count=200",
            json=searchset(
                condition(f"c{i}", f"M54.1{i}"), next_url=f"{FHIR}/Condition?patient=p1&page={i + 1}"
            ),
        )
    body = pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 200
    assert detail(r).startswith("conditions: M54.11, M54.12, M54.13;")
    assert len(responses.calls) == 3


def test_missing_prefetch_without_fhir_server_is_412(client, capsys):
    r = post(client, "test-patient-view", pv_request({"patient": PATIENT}))
    assert r.status_code == 412
    assert "conditions" in r.get_json()["message"] and "observations" not in r.get_json()["message"]
    # Only optional data missing (observations): answered without it, and the log says so.
    r = post(client, "test-patient-view", pv_request({"patient": PATIENT, "conditions": searchset()}))
    assert r.status_code == 200
    out = capsys.readouterr().out
    assert '"degraded":["observations"]' in out
    # Not sent is the EHR's choice, not a search cut short: the rules are not told their data is partial.
    call = [json.loads(x) for x in out.splitlines() if '"hook.call"' in x][-1]
    assert call["incomplete"] == []


@pytest.mark.parametrize(
    "status,kind",
    [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not-found"),
        (500, "server-error"),
        (503, "server-error"),
    ],
)
@responses.activate
def test_fhir_error_status_on_required_key_is_412(client, status, kind):
    responses.get(f"{FHIR}/Condition", status=status, json={"resourceType": "OperationOutcome"})
    r = post(
        client, "test-patient-view", pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    )
    assert r.status_code == 412
    assert f"conditions ({kind})" in r.get_json()["message"]
    assert TOKEN not in r.get_data(as_text=True)


@responses.activate
def test_invalid_json_and_operation_outcome_bodies_are_412(client):
    responses.get(f"{FHIR}/Condition", body="<html>login</html>", status=200)
    r = post(
        client, "test-patient-view", pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    )
    assert r.status_code == 412 and "invalid-json" in r.get_json()["message"]
    responses.replace(responses.GET, f"{FHIR}/Condition", json={"resourceType": "OperationOutcome"})
    r = post(
        client, "test-patient-view", pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    )
    assert r.status_code == 412 and "operation-outcome" in r.get_json()["message"]


@responses.activate
def test_redirect_is_not_followed(client):
    responses.get(f"{FHIR}/Condition", status=302, headers={"Location": "https://attacker.example.com/x"})
    r = post(
        client, "test-patient-view", pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
    )
    assert r.status_code == 412 and "redirect-refused" in r.get_json()["message"]
    assert len(responses.calls) == 1


@responses.activate
def test_optional_key_failure_degrades_instead_of_412(client):
    responses.get(f"{FHIR}/Observation", status=500)
    body = pv_request({"patient": PATIENT, "conditions": searchset(condition("c1", "M54.17"))}, **fhir_call())
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and "observations: 0" in detail(r)


@responses.activate
def test_read_of_missing_patient_is_no_data_not_an_error(client):
    responses.get(f"{FHIR}/Patient/p1", status=404, json={"resourceType": "OperationOutcome"})
    body = pv_request({"conditions": searchset(), "observations": None}, **fhir_call())
    assert post(client, "test-patient-view", body).status_code == 200


@responses.activate
def test_no_authorization_header_without_fhir_authorization(client):
    responses.get(f"{FHIR}/Condition", json=searchset())
    body = pv_request({"patient": PATIENT, "observations": None}, fhirServer=FHIR)
    assert post(client, "test-patient-view", body).status_code == 200
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_timeout_is_412_and_the_deadline_holds():
    app = create_app(settings(fhir_deadline_s=0.5), services=make_test_services())
    responses.get(f"{FHIR}/Condition", body=requests.exceptions.ReadTimeout("slow"))
    r = post(
        app.test_client(),
        "test-patient-view",
        pv_request({"patient": PATIENT, "observations": None}, **fhir_call()),
    )
    assert r.status_code == 412 and "timeout" in r.get_json()["message"]


@responses.activate
def test_slow_queries_run_in_parallel_within_the_deadline():
    """Three queries that each take 0.4 s finish in about 0.4 s, and a 3 s one is cut at the deadline."""
    app = create_app(settings(fhir_deadline_s=1.0), services=make_test_services())

    def slow(seconds, payload):
        def callback(request):
            time.sleep(seconds)
            return 200, {}, json.dumps(payload)

        return callback

    responses.add_callback(responses.GET, f"{FHIR}/Patient/p1", callback=slow(0.4, PATIENT))
    responses.add_callback(
        responses.GET, f"{FHIR}/Condition", callback=slow(0.4, searchset(condition("c", "M54.16")))
    )
    responses.add_callback(responses.GET, f"{FHIR}/Observation", callback=slow(0.4, searchset()))
    started = time.perf_counter()
    r = post(app.test_client(), "test-patient-view", pv_request({}, **fhir_call()))
    parallel = time.perf_counter() - started
    assert r.status_code == 200 and "M54.16" in detail(r)
    assert parallel < 1.0, f"three 0.4 s queries took {parallel:.2f} s: not parallel"

    responses.replace(responses.GET, f"{FHIR}/Condition", body=b"")
    responses.remove(responses.GET, f"{FHIR}/Condition")
    finished = threading.Event()

    def stuck(request):  # a mocked transport has no socket for the watchdog to cut: it runs to its end
        time.sleep(3.0)
        finished.set()
        return 200, {}, json.dumps(searchset())

    responses.add_callback(responses.GET, f"{FHIR}/Condition", callback=stuck)
    started = time.perf_counter()
    r = post(app.test_client(), "test-patient-view", pv_request({}, **fhir_call()))
    elapsed = time.perf_counter() - started
    assert r.status_code == 412 and "conditions (timeout)" in r.get_json()["message"]
    assert elapsed < 1.6, f"deadline 1.0 s but the call took {elapsed:.2f} s"
    finished.wait(5)  # so the late request is not recorded in a later test's mock


# -- references of draft orders ------------------------------------------------------------------


@responses.activate
def test_reason_reference_resolved_from_bundle_prefetch_or_read(client):
    responses.get(f"{FHIR}/Condition/c3", json=condition("c3", "M47.816"))
    orders = [service_request("sr1", "Condition/c1", "Condition/c2", "Condition/c3")]
    cond_in_bundle = condition("c1", "M54.16")
    body = order_request(
        "order-sign", orders, prefetch={"conditions": searchset(condition("c2", "M51.17"))}, **fhir_call()
    )
    body["context"]["draftOrders"]["entry"].append(
        {"resource": {**cond_in_bundle, "resourceType": "Condition"}}
    )
    r = post(client, "test-order-sign", body)
    assert r.status_code == 200  # a Condition in draftOrders is not judged, but its reference resolves
    assert r.get_json()["cards"][0]["detail"] == "reasons: M54.16, M51.17, M47.816"
    body["context"]["draftOrders"]["entry"].pop()
    body["prefetch"]["conditions"]["entry"].append({"resource": cond_in_bundle})
    r = post(client, "test-order-sign", body)
    assert r.status_code == 200
    assert r.get_json()["cards"][0]["detail"] == "reasons: M54.16, M51.17, M47.816"
    assert {urlsplit(c.request.url).path for c in responses.calls} == {"/fhir/Condition/c3"}


@responses.activate
def test_unresolvable_reference_is_reported_not_fatal(client):
    responses.get(f"{FHIR}/Condition/gone", status=500)
    body = order_request(
        "order-sign",
        [service_request("sr1", "Condition/gone")],
        prefetch={"conditions": searchset()},
        **fhir_call(),
    )
    r = post(client, "test-order-sign", body)
    assert r.status_code == 200
    assert r.get_json()["cards"][0]["detail"] == "reasons: unresolved:Condition/gone"


def test_invalid_resource_in_prefetch_is_repaired_or_skipped_and_counted(client, capsys):
    """A bad optional element is dropped (the Condition still counts); what cannot be repaired is skipped."""
    bad = condition("c2", "M54.16")
    bad["onsetDateTime"] = "not-a-date"
    hopeless = condition("c3", "M51.17")
    hopeless["id"] = "bad id with spaces"
    body = pv_request(
        {
            "patient": PATIENT,
            "conditions": searchset(
                condition("c1", "M54.17"), bad, hopeless, {"resourceType": "NotAType", "id": "x"}
            ),
            "observations": None,
        }
    )
    r = post(client, "test-patient-view", body)
    assert r.status_code == 200 and detail(r).startswith("conditions: M54.16, M54.17;")
    call = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"hook.call"' in line][-1]
    assert call["skipped_invalid"] == {"Condition": 1, "NotAType": 1}


def test_logs_have_no_token_and_no_patient_id(capsys):
    app = create_app(settings(), services=make_test_services())
    with responses.RequestsMock() as mock:
        mock.get(f"{FHIR}/Condition", json=searchset(condition("c1", "M54.17", patient="PATIENT-42")))
        body = pv_request({"patient": PATIENT, "observations": None}, **fhir_call())
        body["context"]["patientId"] = "PATIENT-42"
        r = post(app.test_client(), "test-patient-view", body)
    assert r.status_code == 200
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(
        entry.get("event") == "hook.call" and entry["prefetch"]["conditions"] == "fetched" for entry in lines
    )
    assert TOKEN not in out and "PATIENT-42" not in out


@responses.activate
def test_degraded_optional_keys_are_logged_by_key(client, capsys):
    responses.get(f"{FHIR}/Observation", status=500)
    body = pv_request({"patient": PATIENT, "conditions": searchset(condition("c1", "M54.17"))}, **fhir_call())
    assert post(client, "test-patient-view", body).status_code == 200
    call = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"hook.call"' in x][-1]
    assert call["degraded"] == ["observations"]


def test_every_fallback_query_of_a_service_runs_in_one_round_trip():
    """With fewer parallel slots than prefetch keys, the last query waits for a slot: two round trips
    (issue 16: patient-view's 9 keys against 8 slots made the fallback 2.1x one query)."""
    settings = Settings()
    most = max(len(s.prefetch) for s in services(settings))
    assert settings.fhir_per_call_parallel >= most
