"""openapi.yaml is as strict as the validation, and no stricter (issue 12, item 11).

For generated hook and feedback bodies, the app's verdict (accepted, or refused as invalid) and the
schema's verdict agree. The only disagreements allowed are the rules the spec lists as beyond JSON Schema:
the body's hook must be the service's, selections must name draftOrders entries, fhirServer must be an
allowed host, strings must hold no NUL, a timestamp must be a real instant within years 1-9999 in UTC.
`make fuzz` also runs schemathesis against the served document (tests/test_schemathesis.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from cds.routes import SPEC_PATH
from tests.dbsupport import accepted, overridden
from tests.test_fuzz import FUZZ, HOOK_OF, SEEDS, json_values, mutated_hook, weird_strings

SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
# Rules the spec states in words because JSON Schema cannot (see the operations' descriptions).
BEYOND_SCHEMA = ("does not match this service's hook", "is not an entry of draftOrders", "is not an order")


def schema_errors(name: str, body: Any) -> list[str]:
    validator = OAS30Validator(
        {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]},
        format_checker=oas30_format_checker,
    )
    return [e.message for e in validator.iter_errors(body)]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from hooks.app import create_app
    from tests.builders import settings

    data = tmp_path_factory.mktemp("agreement")
    app = create_app(settings(log_level="ERROR", database_url=f"sqlite:///{data / 'cds.sqlite3'}"))
    with app.test_client() as c:
        yield c


def _verdict(response: Any) -> str | None:
    """'accepted', 'invalid', or None when the answer is about something other than the body's shape."""
    if response.status_code in (200, 412, 413):
        return "accepted"  # 412/413: the shape was fine, the data missing or too much
    body = response.get_json()
    if response.status_code == 400 and body["error"] in ("invalid", "invalid-feedback"):
        if any(rule in body["message"] for rule in BEYOND_SCHEMA):
            return None
        return "invalid"
    return None  # not JSON (Infinity), invalid-string (NUL), fhir-server-refused, 404, 503...


@given(case=mutated_hook())
@FUZZ
def test_hook_bodies_valid_by_the_spec_are_accepted_and_invalid_ones_refused(client, case):
    service, body = case
    response = client.post(f"/cds-services/{service}", data=json.dumps(body), content_type="application/json")
    verdict = _verdict(response)
    if verdict is None:
        return
    errors = schema_errors("HookRequest", body)
    message = response.get_json().get("message")
    assert (verdict == "invalid") == bool(errors), (verdict, message, errors[:3], json.dumps(body)[:400])


def _feedback_item(draw: Any) -> Any:
    item = draw(
        st.sampled_from([accepted("card-1", "s1"), overridden("card-1"), overridden("c", None, "why")])
    )
    item = copy.deepcopy(item)
    for _ in range(draw(st.integers(0, 3))):
        field = draw(
            st.sampled_from(
                [
                    "card",
                    "outcome",
                    "outcomeTimestamp",
                    "acceptedSuggestions",
                    "overrideReason",
                    "reason",
                    "x",
                ]
            )
        )
        value = draw(
            json_values
            | weird_strings
            | st.sampled_from(
                [
                    "accepted",
                    "overridden",
                    "2026-01-15T10:05:31+01:00",
                    "2026-01-15T10:05:31.5Z",
                    "2026-01-15 10:05:31Z",
                    [{"id": "s2"}],
                    [{"id": ""}],
                    [],
                    {"userComment": ""},
                    {"reason": {"system": "s", "code": "c"}},
                    "x" * 129,
                ]
            )
        )
        if field == "reason" and isinstance(item.get("overrideReason"), dict):
            item["overrideReason"]["reason"] = value
        else:
            item[field] = value
    return item


@st.composite
def feedback_bodies(draw) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    return {"feedback": [_feedback_item(draw) for _ in range(draw(st.integers(0, 3)))]}


@given(body=feedback_bodies())
@FUZZ
def test_feedback_bodies_valid_by_the_spec_are_accepted_and_invalid_ones_refused(client, body):
    response = client.post(
        "/cds-services/l5-radiculopathy-patient-view/feedback",
        data=json.dumps(body),
        content_type="application/json",
    )
    verdict = _verdict(response)
    if verdict is None:
        return
    errors = schema_errors("Feedback", body)
    message = response.get_json().get("message")
    assert (verdict == "invalid") == bool(errors), (verdict, message, errors[:3], json.dumps(body)[:400])


@pytest.mark.parametrize("hook", sorted(SEEDS))
def test_the_scenario_requests_are_valid_by_the_spec(hook: str) -> None:
    assert schema_errors("HookRequest", SEEDS[hook]) == []
    assert hook in HOOK_OF.values()
