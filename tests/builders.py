"""Test-only services and hook request builders shared by the test modules."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from cds.cards import Card, Coding, Source
from cds.config import Settings
from cds.registry import HookInput, Service
from cds.validator import validate_response

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fhir_fixtures"
FHIR = "https://ehr.example.org/fhir"


def count_card(inp: HookInput) -> list[Card]:
    """Test handler: one card that reports what the engine handed over."""
    codes = sorted(c.code.coding[0].code for c in inp.of("Condition") if c.code and c.code.coding)
    detail = f"conditions: {', '.join(codes) or 'none'}; observations: {len(inp.of('Observation'))}"
    return [
        Card(
            summary=f"{len(codes)} condition(s)",
            indicator="info",
            detail=detail,
            source=Source(label="test", topic=Coding(system="urn:spine-cds:rule", code="count")),
        )
    ]


def reasons_card(inp: HookInput) -> list[Card]:
    """Test handler for order hooks: one card per draft order listing its resolved reasons."""
    cards = []
    for order in inp.draft_orders:
        if inp.selections and f"ServiceRequest/{order.id}" not in inp.selections:
            continue
        resolved = []
        for ref in order.reasonReference or []:
            cond = inp.resolve(ref.reference)
            resolved.append(cond.code.coding[0].code if cond else f"unresolved:{ref.reference}")
        cards.append(
            Card(
                summary=f"order {order.id}",
                indicator="info",
                detail="reasons: " + (", ".join(resolved) or "none"),
                source=Source(label="test"),
            )
        )
    return cards


def crash(inp: HookInput) -> list[Card]:
    raise RuntimeError("boom " + inp.patient_id)


PV_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&category=exam",
}


def make_test_services() -> list[Service]:
    return [
        Service(
            id="test-patient-view",
            hook="patient-view",
            title="Test PV",
            description="counts conditions",
            prefetch=PV_PREFETCH,
            handler=count_card,
            optional_prefetch=frozenset({"observations"}),
        ),
        Service(
            id="test-order-sign",
            hook="order-sign",
            title="Test sign",
            description="lists reasons",
            prefetch={"conditions": "Condition?patient={{context.patientId}}"},
            handler=reasons_card,
            resolve_references=("reasonReference",),
        ),
        Service(
            id="test-order-select",
            hook="order-select",
            title="Test select",
            description="lists reasons",
            handler=reasons_card,
            resolve_references=("reasonReference",),
        ),
        Service(id="test-crash", hook="patient-view", title="Crash", description="raises", handler=crash),
    ]


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "hash_key": "test-key",
        "fhir_deadline_s": 1.5,
        "fhir_read_timeout_s": 1.0,
        "fhir_allowed_hosts": ["127.0.0.1"],  # the test FHIR engine runs on loopback
    }
    base.update(overrides)
    return Settings(**base)


def condition(cid: str, code: str, patient: str = "p1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
        **extra,
    }


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def pv_request(prefetch: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1"},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(extra)
    return body


def service_request(sid: str, *reasons: str, status: str = "draft") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "95886"}]},
        "reasonReference": [{"reference": r} for r in reasons],
    }


def order_request(
    hook: str, orders: list[dict[str, Any]], selections: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": "Practitioner/dr1",
        "patientId": "p1",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in orders],
        },
    }
    if selections is not None:
        context["selections"] = selections
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    body.update(extra)
    return body


def post(client: Any, service_id: str, body: Any) -> Any:
    """POST a hook call; every 200 response must pass the CDS Hooks response validator."""
    response = client.post(
        f"/cds-services/{service_id}", data=json.dumps(body), content_type="application/json"
    )
    if response.status_code == 200:
        errors = validate_response(response.get_json())
        assert errors == [], errors
    else:
        payload = response.get_json()
        assert payload and payload["message"], "every error answers JSON with a message"
        assert "Traceback" not in response.get_data(as_text=True)
    return response


def clone(obj: Any) -> Any:
    return copy.deepcopy(obj)


def suggestion_codes(suggestion: dict[str, Any]) -> list[str]:
    """Codes a suggestion orders (create) or puts on the orders as their newest diagnosis (update), each
    once (one suggestion may update several draft orders)."""
    codes: list[str] = []
    for action in suggestion.get("actions", []):
        resource = action.get("resource") or {}
        if action["type"] == "create":
            codes += [c["code"] for c in resource["code"]["coding"]]
        elif action["type"] == "update":
            codes += [c["code"] for rc in resource.get("reasonCode", [])[-1:] for c in rc["coding"]]
    return list(dict.fromkeys(codes))


def card_order(card: dict[str, Any]) -> str | None:
    """The draft order an EMG/NCS card is about (it updates or deletes it); None for L5 cards."""
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            if action["type"] == "delete":
                return str(action["resourceId"])
            if action["type"] == "update":
                return f"ServiceRequest/{action['resource']['id']}"
    return None
