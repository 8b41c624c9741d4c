"""CDS Hooks 2.0 feedback endpoint.

`POST /cds-services/{id}/feedback` answers 200 only after its items are committed, so an acknowledged item
survives a crash; an invalid body stores nothing. (The audit of served cards is queued by the hook
endpoint in `cds.routes`, through the store's background writer.)
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from cds.logs import log
from cds.request import HookError
from cds.store.core import parse_timestamp
from cds.store.schema import ID
from cds.validator import validate_feedback
from cds.web import get_store, json_body, state

logger = logging.getLogger("cds.feedback")
blueprint = Blueprint("feedback", __name__)
MAX_ITEMS = 1000
MAX_TEXT = 4000


def _limits(items: list[Any]) -> list[str]:
    """Bounds the database columns need; the spec validator has already checked the shapes."""
    errors = []
    if len(items) > MAX_ITEMS:
        errors.append(f"feedback: at most {MAX_ITEMS} items per request")
    for i, item in enumerate(items[:MAX_ITEMS]):
        ids = [item["card"]] + [a["id"] for a in item.get("acceptedSuggestions") or []]
        if any(len(x) > ID for x in ids):
            errors.append(f"feedback[{i}]: card and suggestion ids are limited to {ID} characters")
        try:
            parse_timestamp(item["outcomeTimestamp"])
        except (OverflowError, ValueError):
            errors.append(f"feedback[{i}].outcomeTimestamp: out of range once converted to UTC")
        reason = item.get("overrideReason") or {}
        texts = [reason.get("userComment") or "", *((reason.get("reason") or {}).values())]
        if any(isinstance(t, str) and len(t) > MAX_TEXT for t in texts):
            errors.append(f"feedback[{i}].overrideReason: text is limited to {MAX_TEXT} characters")
    return errors


@blueprint.post("/cds-services/<service_id>/feedback")
def receive(service_id: str):
    if state().registry.get(service_id) is None:
        raise HookError(404, f"unknown service {service_id[:80]!r}", code="unknown-service")
    store = get_store()
    if store is None:
        raise HookError(503, "feedback storage is not configured", code="unavailable")
    body = json_body()
    errors = validate_feedback(body) or _limits(body["feedback"])
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        err = HookError(400, "; ".join(errors[:5]) + more, code="invalid-feedback")
        log(
            logger,
            logging.WARNING,
            "feedback.rejected",
            status=400,
            reason=err.code,
            message=err.message[:300],
            errors=len(errors),
            service=service_id,
        )
        err.logged = True
        raise err
    retry_after = store.timeouts.retry_after_s
    if not store.available():  # it failed moments ago: answer at once instead of holding a worker again
        raise HookError(503, "feedback could not be stored; retry later", "unavailable", retry_after)
    try:
        result = store.save_feedback(service_id, body["feedback"], issued=state().engine.card_ids.issued)
    except SQLAlchemyError as exc:
        log(logger, logging.ERROR, "feedback.store_failed", service=service_id, error_type=type(exc).__name__)
        raise HookError(503, "feedback could not be stored; retry later", "unavailable", retry_after) from exc
    if result.unknown_cards:
        log(logger, logging.WARNING, "feedback.unknown_card", service=service_id, items=result.unknown_cards)
    log(
        logger,
        logging.INFO,
        "feedback.stored",
        service=service_id,
        received=result.received,
        stored=result.stored,
        outcomes=sorted({item["outcome"] for item in body["feedback"]}),
    )
    return jsonify(
        {"received": result.received, "stored": result.stored, "unknownCards": result.unknown_cards}
    )
