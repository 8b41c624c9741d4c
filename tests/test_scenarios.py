"""The clinical scenarios of the brief (and extra order-entry cases) through the real HTTP endpoint.

Each fixture in fhir_fixtures/scenarios is a complete hook request; expected.yaml states which rules
fire, their indicators, the codes their suggestions order, which are recommended and, for the
EMG/NCS services, which draft order each card is about. Every response also passes the validator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hooks.app import create_app as production_app
from tests.builders import FIXTURES, card_order, post, settings, suggestion_codes

SCENARIOS = FIXTURES / "scenarios"
EXPECTED = yaml.safe_load((SCENARIOS / "expected.yaml").read_text())
CANDIDATES = {"M54.16", "M54.17", "M51.16", "M51.17", "M47.26", "M47.27"}


@pytest.fixture(scope="module")
def scenario_client():
    app = production_app(settings(clock=datetime(2026, 1, 15, 15, 0, tzinfo=UTC)))
    with app.test_client() as client:
        yield client


def summarize(card: dict[str, Any]) -> dict[str, Any]:
    suggestions = card.get("suggestions", [])
    return {
        "rule": card["source"]["topic"]["code"],
        "indicator": card["indicator"],
        "suggested_codes": sorted(c for s in suggestions for c in suggestion_codes(s)),
        "recommended": sorted(c for s in suggestions if s.get("isRecommended") for c in suggestion_codes(s)),
        # the draft orders some suggestion removes (a referral "instead" removes them too)
        "deletes": sorted(
            {a["resourceId"] for s in suggestions for a in s["actions"] if a["type"] == "delete"}
        ),
        "order": card_order(card),
    }


def expected_card(exp: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": exp["rule"],
        "indicator": exp["indicator"],
        "suggested_codes": sorted(exp.get("suggested_codes", [])),
        "deletes": sorted(exp.get("deletes", [])),
        "order": exp.get("order"),
    }


@pytest.mark.parametrize("case", EXPECTED, ids=[Path(c["file"]).stem for c in EXPECTED])
def test_scenario(scenario_client, case):
    body = json.loads((SCENARIOS / case["file"]).read_text())
    assert case["now"] == "2026-01-15"
    response = post(scenario_client, case["service"], body)
    assert response.status_code == 200, response.get_json()
    cards = [summarize(c) for c in response.get_json()["cards"]]
    got = sorted(({k: v for k, v in c.items() if k != "recommended"} for c in cards), key=json.dumps)
    if not any("order" in e for e in case["cards"]):
        for c in got:
            c["order"] = None
    want = sorted((expected_card(e) for e in case["cards"]), key=json.dumps)
    assert got == want, f"{case['file']}: {case['note']}"
    for exp in case["cards"]:
        card = next(
            c for c in cards if c["rule"] == exp["rule"] and c["order"] == exp.get("order", c["order"])
        )
        if exp.get("recommended") == ["any-one-of-candidates"]:
            assert len(card["recommended"]) == 1 and card["recommended"][0] in CANDIDATES
            if exp.get("recommended_preferred"):
                assert card["recommended"] == [exp["recommended_preferred"]]
        else:
            assert card["recommended"] == sorted(exp.get("recommended", [])), exp["rule"]


@pytest.mark.parametrize("case", EXPECTED, ids=[Path(c["file"]).stem for c in EXPECTED])
def test_scenario_sends_every_prefetch_key_its_service_declares(scenario_client, case):
    """The fixtures are what a conforming EHR sends: every declared key, so no card reports missing data."""
    body = json.loads((SCENARIOS / case["file"]).read_text())
    declared = scenario_client.application.extensions["cds"].registry.get(case["service"]).prefetch
    assert set(declared) <= set(body["prefetch"])
    details = [c.get("detail", "") for c in post(scenario_client, case["service"], body).get_json()["cards"]]
    assert not [d for d in details if "cut short" in d]
