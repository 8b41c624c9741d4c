"""Feedback as real clients send it: every example of the spec, and override reasons without `display`.

The CDS Hooks spec's own override example, and the CDS Hooks sandbox's override menu, send
`overrideReason.reason` with `system` and `code` only. The service stores the display of the card's own
override reason with that code (the audit keeps the reasons each card offered) and a code the card did not
offer as given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cds.app import create_app
from cds.cards import Card, Coding, Source
from cds.registry import Service
from cds.store.schema import feedback
from cds.web import get_store
from hooks.app import main as hooks_main
from tests.builders import pv_request, settings
from tests.dbsupport import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_feedback import PREFETCH, table

SPEC = Path(__file__).parent / "data" / "cds-hooks-2.0.1-feedback.md"
REASONS = "urn:spine-cds:override-reason"
OFFERED = [
    Coding(system=REASONS, code="already-addressed", display="Already ordered or done elsewhere"),
    Coding(system=REASONS, code="patient-declined", display="Patient declines"),
]


def spec_examples() -> list[dict[str, Any]]:
    """Every JSON block of the spec's Feedback section that is a feedback request body."""
    blocks = re.findall(r"```json\s*\n(.*?)```", SPEC.read_text(encoding="utf-8"), flags=re.S)
    bodies = [json.loads(b) for b in blocks]
    return [b for b in bodies if isinstance(b, dict) and "feedback" in b]


def reasons_card(_inp: Any) -> list[Card]:
    return [
        Card(
            summary="a card with override reasons",
            indicator="info",
            source=Source(label="test", topic=Coding(system="urn:spine-cds:rule", code="offers-reasons")),
            overrideReasons=OFFERED,
        )
    ]


@pytest.fixture
def app(db_url):  # noqa: F811
    service = Service(
        id="test-reasons", hook="patient-view", title="Reasons", description="d", handler=reasons_card
    )
    application = create_app(settings(database_url=db_url), services=[service])
    yield application
    get_store(application).close()


def post(client, body: Any):
    return client.post("/cds-services/test-reasons/feedback", json=body)


def served_card(client) -> dict[str, Any]:
    r = client.post("/cds-services/test-reasons", json=pv_request(PREFETCH))
    assert r.status_code == 200
    return r.get_json()["cards"][0]


def test_the_spec_has_three_feedback_examples_one_without_display():
    examples = spec_examples()
    assert [e["feedback"][0]["outcome"] for e in examples] == ["accepted", "overridden", "overridden"]
    assert "display" not in examples[2]["feedback"][0]["overrideReason"]["reason"]


@pytest.mark.parametrize("index", range(3), ids=["accepted", "overridden", "overridden-with-reason"])
def test_every_feedback_example_of_the_spec_gets_200_and_is_stored(app, client, index):
    body = spec_examples()[index]
    r = post(client, body)
    assert r.status_code == 200, r.get_json()
    # The examples name cards this service never served: kept and flagged, not refused.
    assert r.get_json() == {"received": 1, "stored": 1, "unknownCards": 1}
    [row] = table(app, feedback)
    item = body["feedback"][0]
    assert (row["card_uuid"], row["outcome"]) == (item["card"], item["outcome"])
    reason = item.get("overrideReason") or {}
    assert row["override_code"] == (reason.get("reason") or {}).get("code")
    assert row["user_comment"] == reason.get("userComment")
    assert row["override_display"] is None  # an unknown code is stored as given


def sandbox_override(card_uuid: str, code: str, system: str = REASONS) -> dict[str, Any]:
    """What the sandbox's override menu posts: the reason's code and system, no display, no comment."""
    return {
        "feedback": [
            {
                "card": card_uuid,
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": code, "system": system}},
                "outcomeTimestamp": "2026-11-29T10:00:00.000Z",
            }
        ]
    }


def test_a_reason_without_display_takes_the_display_the_card_offered(app, client):
    card = served_card(client)
    assert [r["code"] for r in card["overrideReasons"]] == ["already-addressed", "patient-declined"]
    r = post(client, sandbox_override(card["uuid"], "patient-declined"))
    assert r.status_code == 200 and r.get_json()["unknownCards"] == 0
    [row] = table(app, feedback)
    assert (row["override_system"], row["override_code"], row["override_display"]) == (
        REASONS,
        "patient-declined",
        "Patient declines",
    )


def test_codes_the_card_did_not_offer_and_client_displays_are_stored_as_given(app, client):
    card = served_card(client)
    own_words = sandbox_override(card["uuid"], "already-addressed")
    own_words["feedback"][0]["overrideReason"]["reason"]["display"] = "Done at the other clinic"
    own_words["feedback"][0]["outcomeTimestamp"] = "2026-11-29T10:01:00Z"
    for body in (sandbox_override(card["uuid"], "ehr-own-reason", "urn:ehr:reasons"), own_words):
        assert post(client, body).status_code == 200
    # Same code, another system: the card did not offer it, so no display is borrowed.
    other_system = sandbox_override(card["uuid"], "patient-declined", "urn:ehr:reasons")
    other_system["feedback"][0]["outcomeTimestamp"] = "2026-11-29T10:02:00Z"
    assert post(client, other_system).status_code == 200
    got = {(r["override_system"], r["override_code"]): r["override_display"] for r in table(app, feedback)}
    assert got == {
        ("urn:ehr:reasons", "ehr-own-reason"): None,
        (REASONS, "already-addressed"): "Done at the other clinic",
        ("urn:ehr:reasons", "patient-declined"): None,
    }


def test_overrides_as_the_sandbox_sends_them_reach_the_report_and_analytics(
    app,
    client,
    db_url,  # noqa: F811
    monkeypatch,
    capsys,
):
    cards = [served_card(client) for _ in range(2)]
    assert post(client, sandbox_override(cards[0]["uuid"], "already-addressed")).status_code == 200
    dismissed = {
        "card": cards[1]["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-29T10:00:00Z",
    }
    assert post(client, {"feedback": [dismissed]}).status_code == 200
    get_store(app).flush()
    page = client.get("/analytics").get_data(as_text=True)
    assert "Already ordered or done elsewhere" in page
    monkeypatch.setenv("CDS_DATABASE_URL", db_url)
    capsys.readouterr()  # the service's own log lines so far
    assert hooks_main(["report", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["rule"], row["shown"], row["overridden"]) == ("offers-reasons", 2, 2)
    assert row["override_reasons"] == {"already-addressed": 1}
