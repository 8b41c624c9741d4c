"""Signed card uuids (cds.card_ids): any worker sharing CDS_HASH_KEY knows a card this service issued."""

from __future__ import annotations

import uuid

from cds.app import create_app
from cds.card_ids import CardIds
from tests.builders import make_test_services, pv_request, settings


def test_signed_uuids_are_uuid4_and_verify_only_with_their_key() -> None:
    ids = CardIds("key-one")
    made = {ids.new() for _ in range(1000)}
    assert len(made) == 1000
    for value in list(made)[:50]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value
        assert ids.issued(value) and ids.issued(value.upper())
        assert not CardIds("key-two").issued(value)
        tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
        assert not ids.issued(tampered)
    assert not ids.issued(str(uuid.uuid4())) and not ids.issued("not-a-uuid") and not ids.issued("")


def test_every_card_of_a_hook_response_carries_a_signed_uuid() -> None:
    app = create_app(settings(), services=make_test_services())
    prefetch = {"patient": None, "conditions": None, "observations": None}
    cards = (
        app.test_client()
        .post("/cds-services/test-patient-view", json=pv_request(prefetch))
        .get_json()["cards"]
    )
    assert cards and all(app.extensions["cds"].engine.card_ids.issued(c["uuid"]) for c in cards)
    assert CardIds(settings().hash_key or "").issued(cards[0]["uuid"])  # the key is CDS_HASH_KEY
