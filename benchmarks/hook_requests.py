"""Hook requests for the load tests: scenario 9's order-sign and scenario 1's patient-view, any prefetch.

`cold_body` marks a request so that the load generator can turn every call into a new patient.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from benchmarks.prefetch_gen import PATIENT, SCENARIOS


def _request(scenario: str, prefetch: dict[str, Any] | None, fhir_server: str | None) -> dict[str, Any]:
    body = json.loads((SCENARIOS / scenario).read_text(encoding="utf-8"))
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["patientId"] = PATIENT
    body.pop("prefetch", None)
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
    return body


def order_sign_request(prefetch: dict[str, Any] | None, fhir_server: str | None = None) -> dict[str, Any]:
    """Scenario 9's draft EMG/NCS orders (only M47.816) for the generated patient."""
    body = _request("09-edx-core-mismatch.json", prefetch, fhir_server)
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{PATIENT}"}
        entry["resource"]["authoredOn"] = date.today().isoformat()
    return body


def patient_view_request(prefetch: dict[str, Any] | None, fhir_server: str | None = None) -> dict[str, Any]:
    return _request("01-l5-no-mri.json", prefetch, fhir_server)


def transaction(prefetch: dict[str, Any]) -> dict[str, Any]:
    """The same chart as a FHIR batch (a transaction is capped in size), to load into the test FHIR server."""
    patient = {"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Bench", "given": ["Pat"]}]}
    entries = [{"resource": patient, "request": {"method": "PUT", "url": f"Patient/{PATIENT}"}}]
    for bundle in prefetch.values():
        for entry in bundle["entry"]:
            r = entry["resource"]
            entries.append(
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            )
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


TOKEN = "UNIQ0000"  # 8 characters, replaced per request by the load generator (same length)


def _tag_texts(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("conclusion", "valueString") and isinstance(value, str):
                node[key] = f"{value} Ref {TOKEN}."
            else:
                _tag_texts(value)
    elif isinstance(node, list):
        for item in node:
            _tag_texts(item)


def cold_body(body: dict[str, Any]) -> bytes:
    """The body with a per-request token in the patient id and in report and exam text.

    With the token replaced by a counter, every call is a new patient whose texts were never read, so
    the per-worker caches (parsed models, text reading) miss as they would across different patients.
    """
    tagged = json.loads(json.dumps(body))
    _tag_texts(tagged)
    return (
        json.dumps(tagged)
        .replace(f'"{PATIENT}"', f'"{PATIENT}-{TOKEN}"')
        .replace(f'Patient/{PATIENT}"', f'Patient/{PATIENT}-{TOKEN}"')
        .encode()
    )
