"""Fuzzing: whatever arrives, the service answers JSON with a 2xx/4xx status, never a 5xx, never hangs.

Short form here (part of `make test`, ~2,500 generated requests, derandomized so CI is repeatable);
`make fuzz` runs the same properties with FUZZ_EXAMPLES=20000 and fresh randomness.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hooks.app import create_app as production_app
from tests.builders import FIXTURES
from tests.builders import settings as app_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),  # a hang fails the example
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
ALLOWED = {200, 400, 401, 404, 405, 412, 413, 415}
SERVICES = [
    "l5-radiculopathy-patient-view",
    "l5-radiculopathy-order-select",
    "emg-ncs-necessity-order-select",
    "emg-ncs-necessity-order-sign",
]
SEEDS = {
    "patient-view": json.loads((FIXTURES / "scenarios" / "07-progressive-foot-drop.json").read_text()),
    "order-select": json.loads(
        (FIXTURES / "scenarios" / "35-edx-order-select-one-selected.json").read_text()
    ),
    "order-sign": json.loads((FIXTURES / "scenarios" / "09-edx-core-mismatch.json").read_text()),
}
HOOK_OF = {
    s: (
        "patient-view"
        if s.endswith("patient-view")
        else "order-select"
        if s.endswith("select")
        else "order-sign"
    )
    for s in SERVICES
}


@pytest.fixture(scope="module")
def client():
    app = production_app(app_settings(clock=datetime(2026, 1, 15, tzinfo=UTC), log_level="ERROR"))
    with app.test_client() as c:
        yield c


def check(response) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert isinstance(body, dict)
    assert "Traceback" not in response.get_data(as_text=True)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=25,
)
weird_strings = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "null",
        "Patient/",
        "../../etc/passwd",
        "💥" * 50,
        "a" * 5000,
        "{{context.patientId}}",
        "2026-13-45",
        "-1",
        "DROP TABLE",
        "%00",
        "\\u0000",
    ]
)
resource_types = st.sampled_from(
    [
        "Condition",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "Procedure",
        "ServiceRequest",
        "Encounter",
        "Patient",
        "NotAResource",
        "Bundle",
        "OperationOutcome",
        "",
    ]
)


@st.composite
def strange_resource(draw) -> dict[str, Any]:
    """Structurally FHIR-looking, clinically strange: wrong types, huge strings, deep nesting, odd types."""
    resource: dict[str, Any] = {
        "resourceType": draw(resource_types),
        "id": draw(st.text(max_size=10) | weird_strings),
    }
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "code",
                    "status",
                    "conclusion",
                    "effectiveDateTime",
                    "subject",
                    "valueString",
                    "presentedForm",
                    "clinicalStatus",
                    "onsetDateTime",
                    "reasonCode",
                    "category",
                    "component",
                    "content",
                ]
            ),
            max_size=6,
        )
    ):
        resource[name] = draw(json_values | weird_strings)
    if draw(st.booleans()):
        nested: Any = {"text": "L5 radiculopathy with active denervation"}
        for _ in range(draw(st.integers(0, 300))):
            nested = {"coding": [nested]}
        resource["code"] = nested
    return resource


@given(service=st.sampled_from(SERVICES), body=json_values)
@FUZZ
def test_arbitrary_json_bodies(client, service, body):
    check(client.post(f"/cds-services/{service}", data=json.dumps(body), content_type="application/json"))


@given(
    service=st.sampled_from(SERVICES),
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
@FUZZ
def test_arbitrary_bytes_and_content_types(client, service, raw, content_type):
    check(client.post(f"/cds-services/{service}", data=raw, content_type=content_type))


@st.composite
def mutated_hook(draw) -> tuple[str, dict[str, Any]]:
    service = draw(st.sampled_from(SERVICES))
    body = json.loads(json.dumps(SEEDS[HOOK_OF[service]]))
    body["hookInstance"] = str(uuid.uuid4())
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(["top", "context", "prefetch", "entry", "draft"]))
        value = draw(json_values | weird_strings)
        if target == "top":
            body[
                draw(
                    st.sampled_from(
                        [
                            "hook",
                            "hookInstance",
                            "context",
                            "prefetch",
                            "fhirServer",
                            "fhirAuthorization",
                            "extension",
                        ]
                    )
                )
            ] = value
        elif target == "context" and isinstance(body.get("context"), dict):
            body["context"][
                draw(
                    st.sampled_from(
                        ["userId", "patientId", "encounterId", "selections", "draftOrders", "other"]
                    )
                )
            ] = value
        elif target == "prefetch" and isinstance(body.get("prefetch"), dict):
            key = draw(
                st.sampled_from(["conditions", "reports", "observations", "procedures", "orders", "x"])
            )
            body["prefetch"][key] = draw(
                st.none()
                | st.builds(
                    lambda rs: {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "entry": [{"resource": r} for r in rs],
                    },
                    st.lists(strange_resource(), max_size=5),
                )
                | strange_resource()
            )
        elif target == "entry" and isinstance(body.get("prefetch"), dict):
            bundle = body["prefetch"].get("reports")
            if isinstance(bundle, dict) and isinstance(bundle.get("entry"), list):
                bundle["entry"].append({"resource": draw(strange_resource())})
        elif target == "draft":
            draft = (
                body.get("context", {}).get("draftOrders") if isinstance(body.get("context"), dict) else None
            )
            if isinstance(draft, dict) and isinstance(draft.get("entry"), list) and draft["entry"]:
                order = draft["entry"][0].get("resource")
                if isinstance(order, dict):
                    order[
                        draw(
                            st.sampled_from(
                                ["code", "reasonCode", "reasonReference", "bodySite", "status", "id"]
                            )
                        )
                    ] = value
    return service, body


@given(case=mutated_hook())
@FUZZ
def test_mutated_hook_requests(client, case):
    service, body = case
    check(client.post(f"/cds-services/{service}", data=json.dumps(body), content_type="application/json"))


@given(resources=st.lists(strange_resource(), min_size=1, max_size=8), service=st.sampled_from(SERVICES))
@FUZZ
def test_strange_fhir_in_otherwise_valid_prefetch(client, resources, service):
    body = json.loads(json.dumps(SEEDS[HOOK_OF[service]]))
    body["hookInstance"] = str(uuid.uuid4())
    for key in body["prefetch"]:
        body["prefetch"][key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources],
        }
    response = client.post(f"/cds-services/{service}", data=json.dumps(body), content_type="application/json")
    check(response)
    assert response.status_code in (200, 400, 412), "strange resources are skipped, not fatal"


@given(
    path=st.text(max_size=30), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
)
@FUZZ
def test_arbitrary_paths_and_methods(client, path, method):
    response = client.open("/cds-services/" + path, method=method, data="{}", content_type="application/json")
    assert response.status_code < 500
