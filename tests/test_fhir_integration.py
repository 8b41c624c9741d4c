"""Against a real FHIR server (Medplum's engine): with prefetch removed, every service fetches the chart
itself (searches in parallel, paging, reasonReference reads) and answers exactly as with prefetch."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from hooks.app import create_app as production_app
from tests.builders import FIXTURES, post, settings
from tests.fhir_engine import FhirEngine

pytestmark = pytest.mark.integration
SCENARIOS = FIXTURES / "scenarios"
EXPECTED = {c["file"]: c for c in yaml.safe_load((SCENARIOS / "expected.yaml").read_text())}
# One fixture per service, chosen so the FHIR path has real work: several searches, an MRI report, an
# exam observation, a reasonReference to resolve, or a problem-list condition.
CASES = [
    "07-progressive-foot-drop.json",
    "08-eight-weeks-pt-done-mri-herniation.json",
    "24-os-lumbar-mri-documentation.json",
    "28-os-surgery-referral-without-mri.json",
    "09-edx-core-mismatch.json",
    "11-edx-radiculopathy-on-problem-list.json",
    "13-edx-entered-in-error-radiculopathy.json",
    "35-edx-order-select-one-selected.json",
]


def transaction(body: dict[str, Any]) -> dict[str, Any]:
    """The fixture's prefetch as a transaction that keeps every id (PUT), plus the Patient."""
    pid = body["context"]["patientId"]
    resources = [{"resourceType": "Patient", "id": pid, "active": True}]
    for value in body["prefetch"].values():
        resources += [e["resource"] for e in (value or {}).get("entry", [])]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirEngine]:
    FhirEngine.ensure_installed()
    with FhirEngine.start(port=0) as engine:
        for name in CASES:
            engine.load_bundle(transaction(json.loads((SCENARIOS / name).read_text())))
        yield engine


@pytest.fixture(scope="module")
def client():
    app = production_app(settings(clock=datetime(2026, 1, 15, 15, 0, tzinfo=UTC), fhir_deadline_s=5.0))
    with app.test_client() as c:
        yield c


def last_hook_call(capsys) -> dict[str, Any]:
    """Our logs are JSON lines on stdout: the fields of the last hook.call."""
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == "hook.call"][-1]


def cards_signature(response: Any) -> list[tuple[str, str, int, str]]:
    return sorted(
        (c["source"]["topic"]["code"], c["indicator"], len(c.get("suggestions", [])), c["summary"])
        for c in response.get_json()["cards"]
    )


@pytest.mark.parametrize("name", CASES)
def test_prefetch_absent_service_fetches_from_fhir_and_answers_the_same(fhir, client, name, capsys):
    case = EXPECTED[name]
    body = json.loads((SCENARIOS / name).read_text())
    with_prefetch = post(client, case["service"], body)
    assert with_prefetch.status_code == 200

    fetched = copy.deepcopy(body)
    fetched.pop("prefetch")
    fetched["fhirServer"] = fhir.base_url
    capsys.readouterr()
    without = post(client, case["service"], fetched)
    assert without.status_code == 200, without.get_json()
    assert cards_signature(without) == cards_signature(with_prefetch)
    assert len(without.get_json()["cards"]) == len(case["cards"])

    call = last_hook_call(capsys)
    status = call["prefetch"]
    assert status and all(v == "fetched" for v in status.values()), status
    assert call["fhir_calls"] >= len(status)


def test_partial_prefetch_fetches_only_missing_keys(fhir, client, capsys):
    body = json.loads((SCENARIOS / "09-edx-core-mismatch.json").read_text())
    body["fhirServer"] = fhir.base_url
    for key in ("procedures", "reports"):
        body["prefetch"].pop(key)
    capsys.readouterr()
    r = post(client, "emg-ncs-necessity-order-sign", body)
    assert r.status_code == 200 and len(r.get_json()["cards"]) == 1  # one card for both orders
    status = last_hook_call(capsys)["prefetch"]
    assert status["procedures"] == "fetched" and status["reports"] == "fetched"
    assert status["conditions"] == "data"


def test_unreachable_fhir_server_is_412_not_500(client):
    body = json.loads((SCENARIOS / "01-l5-no-mri.json").read_text())
    body.pop("prefetch")
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    r = post(client, "l5-radiculopathy-patient-view", body)
    assert r.status_code == 412 and "connection-error" in r.get_json()["message"]
