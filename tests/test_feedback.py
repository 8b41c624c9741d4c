"""Feedback endpoint and card audit over HTTP (SQLite and PostgreSQL); `cds db` and `cds report`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from cds.app import create_app
from cds.cards import Card, Coding, Source, Suggestion
from cds.logs import IdHasher
from cds.registry import Service
from cds.store import Store
from cds.store.schema import feedback, served_cards
from cds.validator import validate_feedback
from cds.web import get_store
from hooks.app import main as hooks_main
from tests.builders import make_test_services, pv_request, searchset, settings
from tests.dbsupport import accepted, overridden

PREFETCH = {
    "patient": {"resourceType": "Patient", "id": "p1"},
    "conditions": searchset(),
    "observations": searchset(),
}


def suggest_card(_inp: Any) -> list[Card]:
    """Test handler: a card with two suggestions, so accepted feedback can name one."""
    return [
        Card(
            summary="suggests an order",
            indicator="warning",
            source=Source(label="test", topic=Coding(system="urn:spine-cds:rule", code="suggest")),
            suggestions=[Suggestion(label="order it", isRecommended=True), Suggestion(label="other")],
            selectionBehavior="at-most-one",
        )
    ]


@pytest.fixture
def app(db_url):
    services = [
        *make_test_services(),
        Service(
            id="test-suggest", hook="patient-view", title="Suggest", description="d", handler=suggest_card
        ),
    ]
    application = create_app(settings(database_url=db_url), services=services)
    yield application
    get_store(application).close()


def hook_call(client, service: str = "test-suggest") -> dict[str, Any]:
    response = client.post(f"/cds-services/{service}", json=pv_request(PREFETCH))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def post_feedback(client, body: Any, service: str = "test-suggest"):
    return client.post(
        f"/cds-services/{service}/feedback", data=json.dumps(body), content_type="application/json"
    )


def table(app, t: sa.Table) -> list[dict[str, Any]]:
    store = get_store(app)
    store.flush()
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t))]


def test_every_served_card_is_audited(app, client):
    body = pv_request(PREFETCH)
    response = client.post("/cds-services/test-suggest", json=body)
    card = response.get_json()["cards"][0]
    counted = hook_call(client, "test-patient-view")["cards"][0]
    audit = {r["card_uuid"]: r for r in table(app, served_cards)}
    row = audit[card["uuid"]]
    assert (row["service"], row["rule"], row["indicator"]) == ("test-suggest", "suggest", "warning")
    assert row["hook_instance"] == body["hookInstance"]
    assert row["suggestion_uuids"] == [s["uuid"] for s in card["suggestions"]]
    assert row["patient_hash"] == IdHasher("test-key")("p1") and "p1" not in row["patient_hash"]
    assert audit[counted["uuid"]]["rule"] == "count"


def test_feedback_round_trip_is_idempotent(app, client):
    card = hook_call(client)["cards"][0]
    item = accepted(card["uuid"], card["suggestions"][0]["uuid"])
    first = post_feedback(client, {"feedback": [item]})
    assert first.status_code == 200 and first.get_json() == {"received": 1, "stored": 1, "unknownCards": 0}
    again = post_feedback(client, {"feedback": [item, item]})
    assert again.status_code == 200 and again.get_json()["stored"] == 0
    [row] = table(app, feedback)
    assert (row["service"], row["card_uuid"], row["outcome"]) == ("test-suggest", card["uuid"], "accepted")
    assert row["accepted_suggestions"] == [card["suggestions"][0]["uuid"]] and row["unknown_card"] is False


def test_override_reason_is_stored(app, client):
    card = hook_call(client)["cards"][0]
    r = post_feedback(
        client, {"feedback": [overridden(card["uuid"], code="already-done", comment="done last week")]}
    )
    assert r.status_code == 200
    [row] = table(app, feedback)
    assert (row["override_code"], row["override_display"]) == ("already-done", "Reason already-done")
    assert row["user_comment"] == "done last week"


def test_feedback_for_a_card_never_served_is_kept_and_flagged(app, client):
    r = post_feedback(client, {"feedback": [overridden("00000000-dead-beef-0000-000000000000")]})
    assert r.status_code == 200 and r.get_json()["unknownCards"] == 1
    [row] = table(app, feedback)
    assert row["unknown_card"] is True


OK = accepted("c1", "s1")
NO_CODE = {**overridden("c1"), "overrideReason": {"reason": {"system": "urn:x", "display": "no code"}}}
INVALID = [
    ("bare object", OK, "body must be {'feedback'"),
    ("missing outcome", {"feedback": [OK, {k: v for k, v in OK.items() if k != "outcome"}]}, "cds-fb-1"),
    ("accepted, no acceptedSuggestions", {"feedback": [OK, {**OK, "acceptedSuggestions": []}]}, "cds-fb-2"),
    (
        "bad timestamp",
        {"feedback": [OK, {**OK, "outcomeTimestamp": "2026-02-30T10:00:00Z"}]},
        "not a real date",
    ),
    (
        "timestamp without zone",
        {"feedback": [OK, {**OK, "outcomeTimestamp": "2026-01-15T10:00:00"}]},
        "RFC 3339",
    ),
    ("override reason without code", {"feedback": [OK, NO_CODE]}, "overrideReason.reason.code: required"),
    ("override with nothing", {"feedback": [OK, {**overridden("c1"), "overrideReason": {}}]}, "cds-fb-3"),
    ("suggestions not {id}", {"feedback": [OK, {**overridden("c"), "acceptedSuggestions": "s"}]}, "array of"),
    ("empty array", {"feedback": []}, "must not be empty"),
    ("item not an object", {"feedback": [OK, "c1"]}, "must be an object"),
    ("year 1, UTC+14", {"feedback": [OK, {**OK, "outcomeTimestamp": "0001-01-01T00:00:00+14:00"}]}, "UTC"),
    ("card id too long", {"feedback": [OK, accepted("c" * 200)]}, "limited to 128"),
    ("too many items", {"feedback": [accepted(f"c{i}") for i in range(1001)]}, "at most 1000"),
]


@pytest.mark.parametrize("name,body,needle", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_body_is_400_and_stores_nothing(app, client, name, body, needle):
    r = post_feedback(client, body)
    payload = r.get_json()
    assert r.status_code == 400 and payload["status"] == 400 and payload["error"] == "invalid-feedback"
    assert needle in payload["message"], payload["message"]
    assert table(app, feedback) == [], "a rejected body must not store any of its items"


def test_validator_rejects_each_kind_of_invalid_item():
    assert (
        validate_feedback({"feedback": [OK, overridden("c1"), overridden("c2", code=None, comment="x")]})
        == []
    )
    for _name, body, needle in INVALID[:10]:  # the rest are storage limits, checked by the endpoint
        assert any(needle in e for e in validate_feedback(body)), needle


def test_protocol_errors_are_json(app, client):
    assert post_feedback(client, {"feedback": [OK]}, service="no-such-service").status_code == 404
    wrong_type = client.post("/cds-services/test-suggest/feedback", data="{}", content_type="text/plain")
    assert wrong_type.status_code == 415
    broken = client.post("/cds-services/test-suggest/feedback", data="{", content_type="application/json")
    assert broken.status_code == 400 and broken.get_json()["error"] == "malformed-json"
    assert client.get("/cds-services/test-suggest/feedback").status_code == 405
    assert table(app, feedback) == []


def test_unreachable_database_answers_503_not_a_stack_trace(app, client):
    down = Store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2", migrate=False)
    state = app.extensions["cds"]
    state.store, real = down, get_store(app)
    try:
        r = post_feedback(client, {"feedback": [OK]})
    finally:
        state.store = real
        down.close()
    assert r.status_code == 503 and r.get_json()["error"] == "unavailable"
    assert "Traceback" not in r.get_data(as_text=True)


def test_report_and_db_commands(app, client, db_url, monkeypatch, capsys):
    cards = [hook_call(client)["cards"][0] for _ in range(4)]
    post_feedback(
        client, {"feedback": [accepted(cards[0]["uuid"]), overridden(cards[1]["uuid"], code="dup")]}
    )
    post_feedback(
        client, {"feedback": [overridden(cards[2]["uuid"], code="dup"), overridden("unknown-card")]}
    )
    get_store(app).flush()
    monkeypatch.setenv("CDS_DATABASE_URL", db_url)

    assert hooks_main(["db", "upgrade"]) == 0
    assert "revision 0002" in capsys.readouterr().out
    assert hooks_main(["report", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "service": "test-suggest",
            "rule": "suggest",
            "shown": 4,
            "accepted": 1,
            "overridden": 2,
            "suppressed": 0,
            "override_reasons": {"dup": 2},
        }
    ]
    assert hooks_main(["report"]) == 0
    text = capsys.readouterr().out
    assert (
        "test-suggest" in text
        and "25.0%" in text
        and "dup (2)" in text
        and "never served (flagged): 1" in text
    )
    assert hooks_main(["report", "--since", "2999-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert hooks_main(["report", "--since", "yesterday"]) == 2

    assert hooks_main(["db", "prune", "--older-than", "1"]) == 0
    assert "deleted 0 served card(s) and 0 feedback item(s)" in capsys.readouterr().out
    assert hooks_main(["db", "prune", "--older-than", "0"]) == 0
    assert "deleted 4 served card(s) and 4 feedback item(s)" in capsys.readouterr().out
