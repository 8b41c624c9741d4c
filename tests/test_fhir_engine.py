"""Integration tests of the in-memory FHIR R4 test server: the behaviour our CDS service relies on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.fhir_engine import FhirEngine, FhirEngineError

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
EMG_LOINC = "18749-2"
RADICULOPATHY = "128196005"
LOW_BACK_PAIN = "278860009"
N_OBSERVATIONS = 25


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient_bundle(family: str, n_observations: int = N_OBSERVATIONS) -> dict[str, Any]:
    """A transaction Bundle whose references between entries are all urn:uuid placeholders."""
    patient = _urn()
    subject = {"reference": patient}
    entries = [
        _entry(patient, {"resourceType": "Patient", "name": [{"family": family}], "gender": "female"}),
        _entry(
            _urn(),
            {
                "resourceType": "Condition",
                "subject": subject,
                "code": {"coding": [{"system": SNOMED, "code": RADICULOPATHY}]},
            },
        ),
        _entry(
            _urn(),
            {
                "resourceType": "Condition",
                "subject": subject,
                "code": {"coding": [{"system": SNOMED, "code": LOW_BACK_PAIN}]},
            },
        ),
        _entry(
            _urn(),
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "subject": subject,
                "code": {"coding": [{"system": LOINC, "code": EMG_LOINC}]},
                "effectiveDateTime": "2024-03-01",
            },
        ),
    ]
    for status in ("active", "completed", "draft"):
        entries.append(
            _entry(
                _urn(),
                {
                    "resourceType": "ServiceRequest",
                    "status": status,
                    "intent": "order",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
                },
            )
        )
    for i in range(n_observations):
        entries.append(
            _entry(
                _urn(),
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                    "effectiveDateTime": f"2024-01-{i + 1:02d}",
                    "valueQuantity": {"value": 60 + i, "unit": "/min"},
                },
            )
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
def engine() -> Iterator[FhirEngine]:
    with FhirEngine.start() as fhir:
        yield fhir


@pytest.fixture(scope="module")
def patient_id(engine: FhirEngine) -> str:
    response = engine.load_bundle(patient_bundle("Doe"))
    engine.load_bundle(patient_bundle("Other", n_observations=3))  # noise that must not leak into searches
    location = response["entry"][0]["response"]["location"]
    resource_type, pid = location.split("/")[:2]
    assert resource_type == "Patient"
    return pid


def _get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [
        e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "include"
    ]


def test_read_by_id(engine: FhirEngine, patient_id: str) -> None:
    resp = _get(f"{engine.base_url}/Patient/{patient_id}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/fhir+json")
    assert resp.json()["id"] == patient_id
    assert resp.json()["name"][0]["family"] == "Doe"


def test_transaction_rewrote_urn_references(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/Condition", params={"patient": patient_id}).json()
    refs = {e["resource"]["subject"]["reference"] for e in bundle["entry"]}
    assert refs == {f"Patient/{patient_id}"}


def test_condition_by_patient_returns_exactly_two(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/Condition?patient={patient_id}").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 2
    codes = sorted(e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"])
    assert codes == sorted([RADICULOPATHY, LOW_BACK_PAIN])
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{engine.base_url}/Condition/{entry['resource']['id']}"


def test_observation_paging_follows_absolute_next_links(engine: FhirEngine, patient_id: str) -> None:
    url: str | None = f"{engine.base_url}/Observation?patient={patient_id}&_count=10"
    seen: list[str] = []
    pages = 0
    while url:
        assert urlsplit(url).netloc == urlsplit(engine.base_url).netloc, url
        bundle = _get(url).json()
        assert bundle["total"] == N_OBSERVATIONS
        assert len(bundle.get("entry", [])) <= 10
        seen += _ids(bundle)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(engine.base_url + "/Observation?")
        url = links.get("next")
        pages += 1
        assert pages <= 5, "paging does not terminate"
    assert pages == 3
    assert len(seen) == len(set(seen)) == N_OBSERVATIONS


def test_default_page_size_is_twenty(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/Observation?patient={patient_id}").json()
    assert bundle["total"] == N_OBSERVATIONS
    assert len(bundle["entry"]) == 20
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_post_search_form_encoded(engine: FhirEngine, patient_id: str) -> None:
    resp = requests.post(
        f"{engine.base_url}/Observation/_search",
        data={"patient": patient_id, "_count": "100", "date": "ge2024-01-21"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    bundle = resp.json()
    assert bundle["total"] == 5  # 2024-01-21 .. 2024-01-25
    assert len(bundle["entry"]) == 5


def test_diagnostic_report_by_loinc_system_and_code(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(
        f"{engine.base_url}/DiagnosticReport", params={"patient": patient_id, "code": f"{LOINC}|{EMG_LOINC}"}
    ).json()
    assert bundle["total"] == 1
    wrong_system = _get(
        f"{engine.base_url}/DiagnosticReport", params={"patient": patient_id, "code": f"{SNOMED}|{EMG_LOINC}"}
    ).json()
    assert wrong_system["total"] == 0


def test_service_request_status_list_is_or(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/ServiceRequest?patient={patient_id}&status=active,completed").json()
    assert sorted(e["resource"]["status"] for e in bundle["entry"]) == ["active", "completed"]


def test_untyped_reference_on_multi_target_param(engine: FhirEngine, patient_id: str) -> None:
    """`subject=ID` and `subject:Patient=ID` match (the bare engine would return nothing for both)."""
    for query in (f"subject={patient_id}", f"subject:Patient={patient_id}", f"subject=Patient/{patient_id}"):
        assert _get(f"{engine.base_url}/Condition?{query}").json()["total"] == 2, query


def test_sort_descending_by_date(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/Observation?patient={patient_id}&_sort=-date&_count=3").json()
    dates = [e["resource"]["effectiveDateTime"] for e in bundle["entry"]]
    assert dates == ["2024-01-25", "2024-01-24", "2024-01-23"]


def test_unknown_search_parameter_is_rejected_unless_lenient(engine: FhirEngine, patient_id: str) -> None:
    url = f"{engine.base_url}/Observation?patient={patient_id}&no-such-param=1"
    strict = _get(url)
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"
    lenient = _get(url, headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert lenient.json()["total"] == N_OBSERVATIONS


def test_summary_count(engine: FhirEngine, patient_id: str) -> None:
    bundle = _get(f"{engine.base_url}/Observation?patient={patient_id}&_summary=count").json()
    assert bundle["total"] == N_OBSERVATIONS
    assert "entry" not in bundle


def test_metadata(engine: FhirEngine) -> None:
    resp = _get(f"{engine.base_url}/metadata")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/fhir+json")
    body = resp.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"


def test_unknown_id_is_404_operation_outcome(engine: FhirEngine) -> None:
    resp = _get(f"{engine.base_url}/Patient/does-not-exist")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("application/fhir+json")
    assert resp.json()["resourceType"] == "OperationOutcome"


def test_preflight_allows_private_network(engine: FhirEngine) -> None:
    origin = "https://sandbox.cds-hooks.org"
    resp = requests.options(
        f"{engine.base_url}/Patient/x",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, content-type",
            "Access-Control-Request-Private-Network": "true",
        },
        timeout=10,
    )
    assert resp.status_code in (200, 204)
    assert resp.headers["Access-Control-Allow-Origin"] in (origin, "*")
    assert resp.headers["Access-Control-Allow-Private-Network"] == "true"
    assert "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    # The actual response carries CORS headers too.
    get = _get(f"{engine.base_url}/metadata", headers={"Origin": origin})
    assert get.headers["Access-Control-Allow-Origin"] in (origin, "*")


def test_create_update_delete(engine: FhirEngine) -> None:
    created = requests.post(
        f"{engine.base_url}/Practitioner", json={"resourceType": "Practitioner", "active": True}, timeout=10
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["Location"].startswith(f"{engine.base_url}/Practitioner/{pid}")
    updated = requests.put(
        f"{engine.base_url}/Practitioner/{pid}",
        json={"resourceType": "Practitioner", "id": pid, "active": False},
        timeout=10,
    )
    assert updated.status_code == 200 and updated.json()["active"] is False
    assert requests.delete(f"{engine.base_url}/Practitioner/{pid}", timeout=10).status_code == 200
    assert _get(f"{engine.base_url}/Practitioner/{pid}").status_code == 404


def test_invalid_resource_is_rejected(engine: FhirEngine) -> None:
    resp = requests.post(
        f"{engine.base_url}/Patient", json={"resourceType": "Patient", "gender": 42}, timeout=10
    )
    assert resp.status_code == 400
    assert resp.json()["resourceType"] == "OperationOutcome"


def test_bad_json_is_400_and_server_survives(engine: FhirEngine) -> None:
    resp = requests.post(
        f"{engine.base_url}/Patient",
        data="{not json",
        headers={"Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert _get(f"{engine.base_url}/metadata").status_code == 200


def test_admin_is_outside_fhir_base(engine: FhirEngine) -> None:
    assert requests.post(f"{engine.base_url}/admin/reset", timeout=10).status_code != 200
    status = engine.status()
    assert status["counts"]["Observation"] >= N_OBSERVATIONS


def test_reset_and_load_at_startup(tmp_path: Path) -> None:
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(json.dumps(patient_bundle("Loaded", n_observations=2)))
    with FhirEngine.start(load=[bundle_path]) as fhir:
        assert _get(f"{fhir.base_url}/Patient?family=Loaded").json()["total"] == 1
        fhir.reset()
        assert _get(f"{fhir.base_url}/Patient").json()["total"] == 0
        fhir.load_bundle(bundle_path)
        assert _get(f"{fhir.base_url}/Observation").json()["total"] == 2


def test_delay_ms_slows_every_response() -> None:
    with FhirEngine.start(delay_ms=100) as slow:
        url = f"{slow.base_url}/metadata"
        _get(url)  # warm up the connection and the CapabilityStatement cache
        for _ in range(3):
            started = time.perf_counter()
            assert _get(url).status_code == 200
            assert time.perf_counter() - started >= 0.1


def test_failed_transaction_is_all_or_nothing(engine: FhirEngine) -> None:
    patient = _urn()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(patient, {"resourceType": "Patient", "name": [{"family": "Rollback"}]}),
            _entry(_urn(), {"resourceType": "Patient", "gender": 42}),  # invalid: gender must be a code
        ],
    }
    resp = requests.post(engine.base_url, json=bundle, timeout=10)
    assert resp.status_code == 400
    assert _get(f"{engine.base_url}/Patient?family=Rollback").json()["total"] == 0


def test_batch_reports_per_entry_status(engine: FhirEngine, patient_id: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "GET", "url": f"Condition?patient={patient_id}"}},
        ],
    }
    result = requests.post(engine.base_url, json=bundle, timeout=10).json()
    assert result["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in result["entry"]] == ["200", "404", "200"]
    assert result["entry"][2]["resource"]["total"] == 2


def test_start_fails_clearly_on_bad_load_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    invalid = _entry(_urn(), {"resourceType": "Patient", "birthDate": "not-a-date"})
    bad.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [invalid]}))
    with pytest.raises(FhirEngineError, match=r"(?s)before READY.*bad\.json.*birthDate"):
        FhirEngine.start(load=[bad])


def test_sort_first_key_is_primary(engine: FhirEngine, patient_id: str) -> None:
    """`_sort=status,-_id`: status decides, random ids only break ties (the bare engine does the reverse)."""
    bundle = _get(f"{engine.base_url}/ServiceRequest?patient={patient_id}&_sort=status,-_id").json()
    assert [e["resource"]["status"] for e in bundle["entry"]] == ["active", "completed", "draft"]
