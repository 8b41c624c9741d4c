"""A CDS Hooks 2.0 wire-format validator for responses, discovery and feedback.

No maintained CDS Hooks 2.0 schema exists on PyPI or npm, so the invariants of the spec's FSH
(cds-resp-1..6, cds-fb-1..3) and its 'Use of JSON' rules are encoded here. It checks raw JSON,
independently of the `cds.cards` models, so tests can catch a serializer bug too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

INDICATORS = {"info", "warning", "critical"}
SELECTION = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}
_ABS_URL = re.compile(r"^https?://[^\s/]+")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_RELATIVE_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _empties(value: Any, path: str, errors: list[str], allow: set[str]) -> None:
    if value is None:
        errors.append(f"{path}: null is not allowed")
    elif isinstance(value, str | list | dict) and len(value) == 0 and path not in allow:
        errors.append(f"{path}: empty value is not allowed")
    if isinstance(value, dict):
        for key, item in value.items():
            _empties(item, f"{path}.{key}", errors, allow)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _empties(item, f"{path}[{i}]", errors, allow)


def _coding(c: Any, path: str, errors: list[str], need_display: bool = False) -> None:
    if not isinstance(c, dict):
        errors.append(f"{path}: Coding must be an object")
        return
    for key in ("system", "code"):
        if not isinstance(c.get(key), str) or not c.get(key):
            errors.append(f"{path}.{key}: required string")
    if need_display and not c.get("display"):
        errors.append(f"{path}.display: required (cds-resp-4)")


def _action(a: Any, path: str, errors: list[str]) -> None:
    if not isinstance(a, dict):
        errors.append(f"{path}: action must be an object")
        return
    if a.get("type") not in ACTION_TYPES:
        errors.append(f"{path}.type: must be one of {sorted(ACTION_TYPES)}")
    if not isinstance(a.get("description"), str) or not a.get("description"):
        errors.append(f"{path}.description: required (cds-resp-5)")
    resource = a.get("resource")
    if a.get("type") in ("create", "update"):
        if not isinstance(resource, dict) or "resourceType" not in resource:
            errors.append(f"{path}.resource: {a.get('type')} needs a FHIR resource")
        elif a["type"] == "update" and not resource.get("id"):
            errors.append(f"{path}.resource.id: an update needs the resource id")
    if a.get("type") == "delete":
        if not isinstance(a.get("resourceId"), str) or not _RELATIVE_REF.match(a["resourceId"]):
            errors.append(f"{path}.resourceId: delete needs a relative reference (cds-resp-2)")
        if resource is not None:
            errors.append(f"{path}.resource: delete must not carry a resource (cds-resp-2)")


def validate_card(card: Any, path: str = "card") -> list[str]:
    errors: list[str] = []
    if not isinstance(card, dict):
        return [f"{path}: card must be an object"]
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append(f"{path}.summary: required string")
    elif len(summary) >= 140:
        errors.append(f"{path}.summary: {len(summary)} characters, must be under 140")
    if card.get("indicator") not in INDICATORS:
        errors.append(f"{path}.indicator: must be one of {sorted(INDICATORS)}")
    if not isinstance(card.get("uuid"), str) or not card.get("uuid"):
        errors.append(f"{path}.uuid: every card needs a uuid so feedback can refer to it")
    if "detail" in card and not isinstance(card["detail"], str):
        errors.append(f"{path}.detail: must be a Markdown string")
    source = card.get("source")
    if not isinstance(source, dict) or not source.get("label"):
        errors.append(f"{path}.source.label: required")
    else:
        for key in ("url", "icon"):
            if key in source and not _ABS_URL.match(str(source[key])):
                errors.append(f"{path}.source.{key}: must be an absolute URL")
        if "topic" in source:
            _coding(source["topic"], f"{path}.source.topic", errors)
    suggestions = card.get("suggestions", [])
    if suggestions:
        behavior = card.get("selectionBehavior")
        if behavior not in SELECTION:
            errors.append(f"{path}.selectionBehavior: required with suggestions (cds-resp-6)")
        recommended = sum(1 for s in suggestions if isinstance(s, dict) and s.get("isRecommended") is True)
        if behavior == "at-most-one" and recommended > 1:
            errors.append(f"{path}: at-most-one with {recommended} recommended suggestions (cds-resp-1)")
        for i, s in enumerate(suggestions):
            sp = f"{path}.suggestions[{i}]"
            if not isinstance(s, dict):
                errors.append(f"{sp}: must be an object")
                continue
            if not s.get("label"):
                errors.append(f"{sp}.label: required")
            if not s.get("uuid"):
                errors.append(f"{sp}.uuid: required so accepted feedback can name it")
            if "isRecommended" in s and not isinstance(s["isRecommended"], bool):
                errors.append(f"{sp}.isRecommended: must be boolean")
            for j, a in enumerate(s.get("actions", [])):
                _action(a, f"{sp}.actions[{j}]", errors)
    elif "selectionBehavior" in card and card["selectionBehavior"] not in SELECTION:
        errors.append(f"{path}.selectionBehavior: must be one of {sorted(SELECTION)}")
    for i, reason in enumerate(card.get("overrideReasons", [])):
        _coding(reason, f"{path}.overrideReasons[{i}]", errors, need_display=True)
    for i, link in enumerate(card.get("links", [])):
        lp = f"{path}.links[{i}]"
        if not isinstance(link, dict):
            errors.append(f"{lp}: must be an object")
            continue
        if not link.get("label"):
            errors.append(f"{lp}.label: required")
        if not _ABS_URL.match(str(link.get("url", ""))):
            errors.append(f"{lp}.url: required absolute URL")
        if link.get("type") not in ("absolute", "smart"):
            errors.append(f"{lp}.type: must be absolute or smart")
        if "appContext" in link and link.get("type") != "smart":
            errors.append(f"{lp}.appContext: only for smart links (cds-resp-3)")
    return errors


def validate_response(body: Any) -> list[str]:
    """Every violation of the CDS Hooks 2.0 response rules, as readable strings (empty = valid)."""
    if not isinstance(body, dict):
        return ["response: must be a JSON object"]
    errors: list[str] = []
    if not isinstance(body.get("cards"), list):
        errors.append("response.cards: required array")
    _empties(body, "response", errors, allow={"response.cards"})
    for i, card in enumerate(body.get("cards") or []):
        errors.extend(validate_card(card, f"cards[{i}]"))
    for i, action in enumerate(body.get("systemActions", [])):
        _action(action, f"systemActions[{i}]", errors)
    uuids = [c.get("uuid") for c in body.get("cards") or [] if isinstance(c, dict)]
    if len(uuids) != len(set(uuids)):
        errors.append("response.cards: card uuids must be unique")
    return errors


def validate_discovery(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        return ["discovery: must be {'services': [...]}"]
    errors: list[str] = []
    _empties(body, "discovery", errors, allow=set())
    ids = set()
    for i, svc in enumerate(body["services"]):
        for key in ("hook", "description", "id"):
            if not isinstance(svc.get(key), str) or not svc.get(key):
                errors.append(f"services[{i}].{key}: required string")
        if svc.get("id") in ids:
            errors.append(f"services[{i}].id: duplicate id {svc.get('id')}")
        ids.add(svc.get("id"))
        prefetch = svc.get("prefetch", {})
        if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
            errors.append(f"services[{i}].prefetch: must map keys to query strings")
    return errors


def validate_feedback(body: Any) -> list[str]:
    """Feedback body rules (cds-fb-1..3, RFC 3339 timestamps, array form)."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list):
        return ["feedback: body must be {'feedback': [ ... ]}"]
    if not body["feedback"]:
        return ["feedback: the array must not be empty"]
    errors: list[str] = []
    for i, item in enumerate(body["feedback"]):
        p = f"feedback[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{p}: must be an object")
            continue
        if not isinstance(item.get("card"), str) or not item.get("card"):
            errors.append(f"{p}.card: required card uuid")
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            errors.append(f"{p}.outcome: must be accepted or overridden (cds-fb-1)")
        ts = item.get("outcomeTimestamp")
        if not isinstance(ts, str) or not _RFC3339.match(ts):
            errors.append(f"{p}.outcomeTimestamp: required RFC 3339 date-time")
        else:
            try:
                datetime.fromisoformat(ts.replace("Z", "+00:00"))
            except ValueError:
                errors.append(f"{p}.outcomeTimestamp: not a real date-time")
        accepted = item.get("acceptedSuggestions")
        if outcome == "accepted" and (not isinstance(accepted, list) or not accepted):
            errors.append(f"{p}.acceptedSuggestions: required when accepted (cds-fb-2)")
        elif accepted is not None and (
            not isinstance(accepted, list)
            or not all(isinstance(a, dict) and isinstance(a.get("id"), str) and a["id"] for a in accepted)
        ):
            errors.append(f"{p}.acceptedSuggestions: must be an array of {{id}}, each with an id")
        if "overrideReason" in item:
            reason = item["overrideReason"]
            if not isinstance(reason, dict) or not (reason.get("reason") or reason.get("userComment")):
                errors.append(f"{p}.overrideReason: needs a reason or a userComment (cds-fb-3)")
            else:
                if "reason" in reason:
                    # The card's overrideReasons carry a display (cds-resp-4), but the feedback Coding need
                    # not: the spec's own example and the CDS Hooks sandbox send only system and code.
                    _coding(reason["reason"], f"{p}.overrideReason.reason", errors)
                if "userComment" in reason and not isinstance(reason["userComment"], str):
                    errors.append(f"{p}.overrideReason.userComment: must be a string")
    return errors
