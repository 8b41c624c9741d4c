"""Request-scoped accessors shared by every blueprint: the app state, the JSON body, the store.

A leaf module (like Flask tutorial's `db.py`): blueprints import it and never each other, so each
module's header shows what it depends on and there is no import circle.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, jsonify, request

from cds.config import Settings
from cds.pipeline import Engine
from cds.registry import Registry
from cds.request import HookError
from cds.store import Store

_JSON_TYPES = {"application/json", "application/fhir+json"}
_GC_PAUSE_BYTES = 256 * 1024


@dataclass
class State:
    """Everything a request handler needs, built once by `create_app`."""

    settings: Settings
    registry: Registry
    engine: Engine
    store: Store | None = None  # feedback + card audit (cds.store); flush()/close() at shutdown


def state(app: Flask | None = None) -> State:
    return (app or current_app).extensions["cds"]


def get_store(app: Flask | None = None) -> Store | None:
    """The app's store (also what /readyz and gunicorn's worker_exit use)."""
    return getattr((app or current_app).extensions.get("cds"), "store", None)


def error_body(status: int, code: str, message: str):
    response = jsonify({"error": code, "message": message, "status": status})
    response.status_code = status
    return response


def json_body() -> Any:
    if request.mimetype not in _JSON_TYPES:
        raise HookError(415, "Content-Type must be application/json", code="unsupported-media-type")
    raw = request.get_data(cache=False)
    # A multi-megabyte prefetch decodes into millions of objects. With the cyclic GC running, every
    # allocation burst of the rest of the call rescans them all, for nothing: JSON holds no cycles and the
    # call frees them by reference counting. So the GC pauses for a large call and resumes at teardown.
    if len(raw) > _GC_PAUSE_BYTES and gc.isenabled():
        gc.disable()
        g.gc_paused = True
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HookError(400, "request body is not valid JSON", code="malformed-json") from exc


def resume_gc(_exc: BaseException | None = None) -> None:
    """Teardown: the GC paused by `json_body` for a large body runs again."""
    if g.pop("gc_paused", False):
        gc.enable()
