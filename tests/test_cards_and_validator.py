"""The card model refuses invalid cards; the wire validator catches every A.15 invariant."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from cds.cards import Action, Card, Coding, Link, Response, Source, Suggestion, prune
from cds.validator import validate_card, validate_feedback, validate_response

SRC = Source(
    label="ACR Appropriateness Criteria",
    url="https://acsearch.acr.org/list",
    topic=Coding(system="urn:spine-cds:rule", code="mri"),
)
SR = {
    "resourceType": "ServiceRequest",
    "id": "sr1",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
}


def good_card() -> Card:
    return Card(
        summary="Order lumbar MRI",
        indicator="warning",
        detail="**Evidence:** EMG 2026-01-01",
        source=SRC,
        selectionBehavior="at-most-one",
        suggestions=[
            Suggestion(
                label="MRI", isRecommended=True, actions=[Action(type="create", description="d", resource=SR)]
            ),
            Suggestion(
                label="Remove",
                actions=[Action(type="delete", description="d", resourceId="ServiceRequest/sr1")],
            ),
        ],
        overrideReasons=[Coding(system="urn:x", code="other", display="Other")],
        links=[Link(label="Guideline", url="https://example.org", type="absolute")],
    )


def test_valid_card_serializes_without_nulls_or_empties():
    body = Response(
        cards=[good_card(), Card(summary="s", indicator="info", source=Source(label="x"))]
    ).to_json()
    assert validate_response(body) == []
    plain = body["cards"][1]
    assert set(plain) == {"summary", "indicator", "source", "uuid"}
    assert Response().to_json() == {"cards": []}


@pytest.mark.parametrize(
    "build",
    [
        lambda: Card(summary="x" * 140, indicator="info", source=SRC),
        lambda: Card(summary="", indicator="info", source=SRC),
        lambda: Card(summary="s", indicator="hard-stop", source=SRC),
        lambda: Card(summary="s", indicator="info", source=Source(label="")),
        lambda: Card(summary="s", indicator="info", source=SRC, suggestions=[Suggestion(label="a")]),
        lambda: Card(
            summary="s",
            indicator="info",
            source=SRC,
            selectionBehavior="at-most-one",
            suggestions=[
                Suggestion(label="a", isRecommended=True),
                Suggestion(label="b", isRecommended=True),
            ],
        ),
        lambda: Card(
            summary="s", indicator="info", source=SRC, overrideReasons=[Coding(system="x", code="y")]
        ),
        lambda: Link(label="l", url="https://x.org", type="absolute", appContext="{}"),
        lambda: Link(label="l", url="/relative", type="absolute"),
        lambda: Action(type="delete", description="d", resource=SR),
        lambda: Action(type="delete", description="d", resourceId="sr1"),
        lambda: Action(type="create", description="d"),
        lambda: Action(type="update", description="", resource=SR),
        lambda: Source(label="x", url="example.org"),
    ],
)
def test_model_refuses_invalid_shapes(build):
    with pytest.raises(ValidationError):
        build()


def test_prune_drops_every_empty():
    assert prune({"a": None, "b": "", "c": [], "d": {}, "e": [{"f": None}], "g": 0, "h": False}) == {
        "g": 0,
        "h": False,
    }


def card_json():
    return good_card().to_json()


MUTATIONS = [
    ("null value", lambda c: c.update(detail=None), "null"),
    ("empty string", lambda c: c.update(detail=""), "empty"),
    ("long summary", lambda c: c.update(summary="y" * 140), "under 140"),
    ("bad indicator", lambda c: c.update(indicator="success"), "indicator"),
    ("no uuid", lambda c: c.pop("uuid"), "uuid"),
    ("no source label", lambda c: c["source"].pop("label"), "source.label"),
    ("relative source url", lambda c: c["source"].update(url="acr.org"), "absolute"),
    ("cds-resp-6", lambda c: c.pop("selectionBehavior"), "cds-resp-6"),
    ("cds-resp-1", lambda c: c["suggestions"][1].update(isRecommended=True), "cds-resp-1"),
    ("cds-resp-2 resource", lambda c: c["suggestions"][1]["actions"][0].update(resource=SR), "cds-resp-2"),
    ("cds-resp-2 id", lambda c: c["suggestions"][1]["actions"][0].update(resourceId="sr1"), "cds-resp-2"),
    ("cds-resp-3", lambda c: c["links"][0].update(appContext="x"), "cds-resp-3"),
    ("cds-resp-4", lambda c: c["overrideReasons"][0].pop("display"), "cds-resp-4"),
    ("cds-resp-5", lambda c: c["suggestions"][0]["actions"][0].pop("description"), "cds-resp-5"),
    ("action type", lambda c: c["suggestions"][0]["actions"][0].update(type="CREATE"), "type"),
    ("suggestion uuid", lambda c: c["suggestions"][0].pop("uuid"), "uuid"),
    (
        "update without id",
        lambda c: c["suggestions"][0]["actions"][0].update(
            type="update", resource={"resourceType": "ServiceRequest"}
        ),
        "resource.id",
    ),
    ("link type", lambda c: c["links"][0].update(type="web"), "absolute or smart"),
]


@pytest.mark.parametrize("name,mutate,needle", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_validator_catches_each_invariant(name, mutate, needle):
    card = card_json()
    assert validate_card(card) == []
    mutate(card)
    errors = validate_response({"cards": [card]})
    assert any(needle in e for e in errors), errors


def test_validator_response_level_rules():
    assert validate_response({"cards": []}) == []
    assert validate_response({}) != []
    assert validate_response({"cards": [], "systemActions": []}) != []
    twice = card_json()
    assert any("unique" in e for e in validate_response({"cards": [twice, copy.deepcopy(twice)]}))


FEEDBACK_OK = {
    "card": "c1",
    "outcome": "accepted",
    "outcomeTimestamp": "2026-01-15T10:05:31Z",
    "acceptedSuggestions": [{"id": "s1"}],
}


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"card": "c1"}, "feedback"),
        ({"feedback": [{**FEEDBACK_OK, "outcome": None}]}, "cds-fb-1"),
        ({"feedback": [{k: v for k, v in FEEDBACK_OK.items() if k != "acceptedSuggestions"}]}, "cds-fb-2"),
        ({"feedback": [{**FEEDBACK_OK, "outcomeTimestamp": "2026-13-45 10:00"}]}, "RFC 3339"),
        ({"feedback": [{**FEEDBACK_OK, "outcome": "overridden", "overrideReason": {}}]}, "cds-fb-3"),
    ],
)
def test_feedback_validator(body, needle):
    assert validate_feedback({"feedback": [FEEDBACK_OK]}) == []
    assert any(needle in e for e in validate_feedback(body))
