"""The app's error contract for odd but well-formed JSON (issue 12, items 5 and 11).

A NUL in a feedback card id got 503 "retry later" on PostgreSQL (an EHR would retry forever) and a lone
surrogate a 500; NaN and Infinity literals were accepted; "Practitioner/1\\n" passed as a reference; a 405
named no allowed methods. Every such body now gets 400 before the store sees it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import sqlalchemy as sa

from cds.app import create_app
from cds.store.schema import feedback
from cds.web import get_store
from tests.builders import make_test_services, pv_request, searchset, settings
from tests.dbsupport import accepted, overridden

PREFETCH = {
    "patient": {"resourceType": "Patient", "id": "p1"},
    "conditions": searchset(),
    "observations": None,
}
FEEDBACK = "/cds-services/test-patient-view/feedback"
HOOK = "/cds-services/test-patient-view"


@pytest.fixture
def store_app(db_url):
    application = create_app(settings(database_url=db_url), services=make_test_services())
    yield application
    get_store(application).close()


def _post(client: Any, path: str, raw: bytes | str) -> Any:
    return client.post(path, data=raw, content_type="application/json")


def _stored(app) -> int:
    with get_store(app).read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one()


BAD = {"nul": "a\x00b", "lone-high-surrogate": "a\ud800b", "lone-low-surrogate": "\udc00"}


def _feedback_with(where: str, bad: str) -> dict[str, Any]:
    items = {
        "card": accepted(bad),
        "suggestion": accepted("card-1", bad),
        "comment": overridden("card-1", comment=bad),
        "display": overridden("card-1"),
    }
    item = items[where]
    if where == "display":
        item["overrideReason"]["reason"]["display"] = bad
    return {"feedback": [accepted("card-ok"), item]}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("where", ["card", "suggestion", "comment", "display"])
def test_feedback_with_nul_or_lone_surrogate_is_400_and_stores_nothing(
    store_app, where: str, kind: str
) -> None:
    client = store_app.test_client()
    response = _post(client, FEEDBACK, json.dumps(_feedback_with(where, BAD[kind])))  # ASCII escapes
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid-string" and body["message"].startswith("$.feedback[1].")
    assert "Retry-After" not in response.headers
    assert _stored(store_app) == 0  # the valid first item is not stored either: the body is refused whole
    assert _post(client, FEEDBACK, json.dumps({"feedback": [accepted("card-ok")]})).status_code == 200


def test_surrogate_sent_as_raw_bytes_is_400_too(client) -> None:
    raw = (
        json.dumps(pv_request(copy.deepcopy(PREFETCH)))
        .encode()
        .replace(b"Practitioner/dr1", b"Practitioner/dr\xed\xa0\x80")
    )
    response = _post(client, HOOK, raw)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid-string"


@pytest.mark.parametrize(
    "place",
    ["userId", "note", "key"],
)
def test_hook_body_with_nul_anywhere_is_400(client, place: str) -> None:
    body = pv_request(copy.deepcopy(PREFETCH))
    if place == "userId":
        body["context"]["userId"] = "Practitioner/1\x00"
    elif place == "note":
        cond = {"resourceType": "Condition", "id": "c1", "note": [{"text": "pain\x00"}]}
        body["prefetch"]["conditions"] = searchset(cond)
    else:
        body["extension"] = {"x\x00y": 1}
    response = _post(client, HOOK, json.dumps(body))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid-string"


def test_escaped_surrogate_pairs_are_ordinary_text(client) -> None:
    cond = {"resourceType": "Condition", "id": "c1", "note": [{"text": "ok \U0001f600"}]}
    body = pv_request({**copy.deepcopy(PREFETCH), "conditions": searchset(cond)})
    assert "\\ud83d\\ude00" in json.dumps(body)
    assert _post(client, HOOK, json.dumps(body)).status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_literals_are_refused(client, literal: str) -> None:
    raw = json.dumps(pv_request(copy.deepcopy(PREFETCH)))[:-1] + f', "extension": {{"x": {literal}}}}}'
    assert json.loads(raw)["extension"]["x"] != 0  # Python's json would take it
    response = _post(client, HOOK, raw)
    assert response.status_code == 400 and response.get_json()["error"] == "malformed-json"
    assert "not JSON" in response.get_json()["message"]
    fb = _post(client, FEEDBACK, '{"feedback": [{"card": "c", "outcome": "accepted", "x": NaN}]}')
    assert fb.status_code == 400


@pytest.mark.parametrize("field,value", [("userId", "Practitioner/1\n"), ("patientId", "p1\n")])
def test_identifiers_with_a_trailing_newline_are_refused(client, field: str, value: str) -> None:
    body = pv_request(copy.deepcopy(PREFETCH))
    body["context"][field] = value
    response = _post(client, HOOK, json.dumps(body))
    assert response.status_code == 400 and field in response.get_json()["message"]


@pytest.mark.parametrize(
    "method,path,allowed",
    [("get", HOOK, {"POST", "OPTIONS"}), ("delete", "/cds-services", {"GET", "HEAD", "OPTIONS"})],
)
def test_405_names_the_allowed_methods(client, method: str, path: str, allowed: set[str]) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 405 and response.get_json()["status"] == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


@pytest.mark.parametrize("server", ["http://[::1", "HtTP://[\u008e\u00a6", "https://[zz]/fhir"])
def test_unparsable_fhir_server_is_400_not_500(client, server: str) -> None:
    """Found by schemathesis: urlsplit raises on an unbalanced IPv6 bracket."""
    body = pv_request(copy.deepcopy(PREFETCH), fhirServer=server)
    response = _post(client, HOOK, json.dumps(body))
    assert response.status_code == 400 and "fhirServer" in response.get_json()["message"]
