"""Checks run on every generated request before anything is written.

Why: a fixture that is not valid FHIR R4B, or whose expected cards name a rule its service cannot return,
would make the scenario tests prove nothing. Every resource is validated with fhir.resources R4B.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from scenariogen.model import PREFETCH_KEY_OF, PREFETCH_KEYS, PV, Scenario, services
from scenariogen.resources import NOW, USER


def _fhir_valid(resource: dict[str, Any], where: str) -> None:
    model = get_fhir_model_class(resource["resourceType"])
    try:
        model.model_validate(resource)
    except Exception as exc:  # pydantic ValidationError; re-raise with the location
        raise AssertionError(
            f"{where}: {resource['resourceType']}/{resource.get('id')} invalid: {exc}"
        ) from exc


def validate(s: Scenario, body: dict[str, Any]) -> None:
    where = s.stem
    assert set(body) == {"hook", "hookInstance", "context", "prefetch"}, where
    assert "fhirServer" not in body, where
    uuid.UUID(body["hookInstance"])
    ctx = body["context"]
    assert ctx["userId"] == USER and ctx["patientId"] == s.pid, where
    assert set(body["prefetch"]) == set(PREFETCH_KEYS), where
    ids: set[str] = set()
    resources: list[dict[str, Any]] = []
    for key, bundle in body["prefetch"].items():
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", (where, key)
        assert bundle["total"] == len(bundle["entry"]), (where, key)
        _fhir_valid(bundle, f"{where} prefetch.{key}")
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert PREFETCH_KEY_OF[res["resourceType"]] == key, (where, key, res["id"])
            assert entry["fullUrl"].endswith(f"/{res['resourceType']}/{res['id']}"), where
            if key == "orders":
                assert res["status"] in ("active", "completed", "revoked"), (where, res["id"])
            resources.append(res)
    drafts = []
    if s.hook in ("order-select", "order-sign"):
        assert set(ctx) == {"userId", "patientId", "draftOrders"} | (
            {"selections"} if s.hook == "order-select" else set()
        )
        bundle = ctx["draftOrders"]
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection", where
        _fhir_valid(bundle, f"{where} draftOrders")
        drafts = [e["resource"] for e in bundle["entry"]]
        assert drafts, where
        for d in drafts:
            assert d["resourceType"] == "ServiceRequest", where
            assert (d["status"], d["intent"], d["authoredOn"]) == ("draft", "order", NOW), (where, d["id"])
        draft_refs = {f"ServiceRequest/{d['id']}" for d in drafts}
        if s.hook == "order-select":
            assert ctx["selections"] and set(ctx["selections"]) <= draft_refs, (where, ctx["selections"])
    else:
        assert set(ctx) == {"userId", "patientId"}, where
    for res in resources + drafts:
        _fhir_valid(res, where)
        rid = f"{res['resourceType']}/{res['id']}"
        assert rid not in ids, (where, rid)
        ids.add(rid)
        assert res["subject"] == {"reference": f"Patient/{s.pid}"}, (where, rid)
        if res["resourceType"] == "Condition":
            ver = res["verificationStatus"]["coding"][0]["code"]
            cat = res["category"][0]["coding"][0]["code"]
            if ver == "entered-in-error":
                assert "clinicalStatus" not in res, (where, rid)  # con-5
            elif cat == "problem-list-item":
                assert "clinicalStatus" in res, (where, rid)  # con-3
    for res in drafts:
        for ref in res.get("reasonReference", []):
            assert ref["reference"] in ids, (where, ref)  # resolvable without a FHIR server
    _validate_expectation(s, {d["id"] for d in drafts})


def _validate_expectation(s: Scenario, draft_ids: set[str]) -> None:
    hook, rules = services()[s.service]
    assert hook == s.hook
    for c in s.cards:
        assert c["rule"] in rules, (s.stem, c["rule"])
        assert c["indicator"] in ("info", "warning", "critical"), s.stem
        rec = c["recommended"]
        assert set(rec) <= set(c["suggested_codes"]), (s.stem, c)
        if "order" in c:
            assert c["order"].split("/", 1)[1] in draft_ids, (s.stem, c["order"])
            if s.hook == "order-select":
                assert c["order"] in s.selections, (s.stem, c["order"])
    if s.service == PV:
        assert not {"order", "deletes"} & {k for c in s.cards for k in c}, s.stem
