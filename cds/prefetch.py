"""Prefetch templates: which tokens are legal, how they render, and what a prefetch value means.

CDS Hooks 2.0 allows only `{{context.<root primitive>}}` and the four `{{user*Id}}` tokens.
Values are URL-encoded when rendered. The meaning of a prefetch value follows the spec:
absent key -> fetch it; null -> no data; empty Bundle -> no data; OperationOutcome -> treat as absent.
A search Bundle whose only entries are informational outcomes (`search.mode` `outcome`, severity
information or warning: Epic's "no results") is a successful, empty search, not a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote

TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
# Root-level context fields that are primitives in the three supported hooks (Hook Library).
CONTEXT_PRIMITIVES = {"userId", "patientId", "encounterId"}
_QUERY = re.compile(r"^[A-Z][A-Za-z]+(/[^/?]+|\?.*)?$")


class TemplateError(ValueError):
    pass


def check_template(key: str, template: str) -> None:
    """Reject a prefetch template the spec does not allow (checked when a service is declared)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        raise TemplateError(f"prefetch key {key!r}: use letters, digits, '-' and '_'")
    if not _QUERY.match(template):
        raise TemplateError(
            f"prefetch {key!r}: must be a relative read or search such as Condition?patient=..."
        )
    for token in TOKEN.findall(template):
        if token in USER_TOKENS:
            continue
        field = token.removeprefix("context.")
        if not token.startswith("context.") or field not in CONTEXT_PRIMITIVES:
            raise TemplateError(f"prefetch {key!r}: token {{{{{token}}}}} is not allowed by CDS Hooks 2.0")
    if "{{" in TOKEN.sub("", template) or "}}" in TOKEN.sub("", template):
        raise TemplateError(f"prefetch {key!r}: unbalanced token braces")


def template_type(template: str) -> str:
    """The resource type a template reads ("Condition?patient=..." -> "Condition")."""
    return template.split("?", 1)[0].split("/", 1)[0]


def token_values(context: dict[str, Any]) -> dict[str, str]:
    values = {f"context.{k}": str(v) for k, v in context.items() if k in CONTEXT_PRIMITIVES and v}
    user = str(context.get("userId") or "")
    rtype, _, rid = user.partition("/")
    for token, expected in USER_TOKENS.items():
        if rtype == expected and rid:
            values[token] = rid
    return values


def render(template: str, context: dict[str, Any]) -> str | None:
    """The query for this request, or None if a token has no value (the key then yields no data)."""
    values = token_values(context)
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return quote(value, safe="")

    query = TOKEN.sub(sub, template)
    return None if missing else query


class Status(Enum):
    DATA = "data"  # usable resource(s)
    EMPTY = "empty"  # the client says there is no data
    MISSING = "missing"  # fetch it ourselves


@dataclass(frozen=True)
class PrefetchValue:
    status: Status
    resources: tuple[dict[str, Any], ...] = ()
    next_url: str | None = None
    reason: str = ""


def _is_outcome(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"


_BENIGN = frozenset({"information", "warning"})


def _benign_outcome(entry: Any) -> bool:
    """An entry that only informs about the search (no results, paging notes), not a failure."""
    if not isinstance(entry, dict) or not _is_outcome(entry.get("resource")):
        return False
    search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
    issues = entry["resource"].get("issue") or []
    severities = {i.get("severity") for i in issues if isinstance(i, dict)}
    return search.get("mode") == "outcome" or (bool(severities) and severities <= _BENIGN)


def classify(key: str, prefetch: dict[str, Any]) -> PrefetchValue:
    """What the client's prefetch says for one key (shape was already checked by request validation)."""
    if key not in prefetch:
        return PrefetchValue(Status.MISSING, reason="absent")
    value = prefetch[key]
    if value is None:
        return PrefetchValue(Status.EMPTY, reason="null")
    if _is_outcome(value):
        return PrefetchValue(Status.MISSING, reason="operation-outcome")
    if value.get("resourceType") != "Bundle":
        return PrefetchValue(Status.DATA, resources=(value,))
    raw_entries = [e for e in value.get("entry") or [] if isinstance(e, dict)]
    entries = [e.get("resource") for e in raw_entries]
    resources = tuple(r for r in entries if isinstance(r, dict) and not _is_outcome(r))
    if entries and not resources and any(_is_outcome(r) for r in entries):
        if all(_benign_outcome(e) for e in raw_entries if _is_outcome(e.get("resource"))):
            return PrefetchValue(Status.EMPTY, reason="no-results")
        return PrefetchValue(Status.MISSING, reason="operation-outcome")
    next_url = next(
        (
            link.get("url")
            for link in value.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str)
        ),
        None,
    )
    if not resources and next_url is None:
        return PrefetchValue(Status.EMPTY, reason="empty-bundle")
    return PrefetchValue(Status.DATA, resources=resources, next_url=next_url)
