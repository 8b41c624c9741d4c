"""Request-scoped accessors shared by every blueprint: the app state, the JSON body, the store.

A leaf module (like Flask tutorial's `db.py`): blueprints import it and never each other, so each
module's header shows what it depends on and there is no import circle.
"""

from __future__ import annotations

import gc
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from cds.config import Settings
from cds.logs import log
from cds.pipeline import Engine
from cds.registry import Registry
from cds.request import HookError
from cds.store import Store

logger = logging.getLogger("cds.web")
_JSON_TYPES = {"application/json", "application/fhir+json"}
_FAST = msgspec.json.Decoder()  # see `decode`


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


def read_body() -> bytes:
    """The request body: 413 above the body limit, with or without Content-Length; 400 when the transfer
    itself is broken (a malformed chunk), which the WSGI server reports by raising from its input stream."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            # Chunked: werkzeug would stop silently at the limit, so the rest looked like broken JSON (400).
            raw = request.environ["wsgi.input"].read(limit + 1)
            if len(raw) > limit:
                raise RequestEntityTooLarge()
            return raw
        return request.get_data(cache=False)
    except HTTPException:
        raise
    except Exception as exc:  # gunicorn's InvalidChunkSize, ChunkMissingTerminator...: the client's fault
        log(logger, logging.WARNING, "request.malformed_body", error_type=type(exc).__name__)
        raise HookError(400, "request body is malformed (transfer coding)", code="malformed-body") from exc


class _NonFinite(ValueError):
    """NaN, Infinity, -Infinity: literals Python's json accepts and JSON (RFC 8259) does not."""


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def json_body() -> Any:
    if request.mimetype not in _JSON_TYPES:
        raise HookError(415, "Content-Type must be application/json", code="unsupported-media-type")
    raw = read_body()
    # The cyclic GC pauses for the call and resumes at teardown. A call allocates tens of thousands of objects
    # (millions for a multi-megabyte prefetch) that hold no cycles and are freed by reference counting; with
    # the GC running, that churn triggered full collections of every long-lived object of the worker, ~100 ms
    # each about every 30 calls: 3.5-4.9 ms per call on average, and the p99 (docs/performance.md). Cycles
    # the call leaves behind are collected by the first young collection after it.
    if gc.isenabled():
        gc.disable()
        g.gc_paused = True
    body, strict = decode(raw)
    where = bad_string(raw, body, surrogates=not strict)
    if where is not None:
        raise HookError(
            400,
            f"{where}: strings must not hold NUL (U+0000) or unpaired surrogates",
            code="invalid-string",
        )
    return body


def decode(raw: bytes) -> tuple[Any, bool]:
    """(the body as Python values, decoded by msgspec?), or a 400 HookError; the values and the errors are
    those of `stdlib_decode` for any bytes.

    msgspec decodes what both accept to equal values, twice as fast (docs/performance.md). What msgspec
    refuses goes to the standard library, which decides and words the 400: the bodies it accepts and msgspec
    does not (a lone surrogate, a BOM, UTF-16, 1e400 read as inf, nesting past msgspec's depth limit) are
    answered as before. tests/test_json_decoding.py checks the equivalence on generated and mangled JSON.
    """
    try:
        return _FAST.decode(raw), True
    # Invalid UTF-8 raises UnicodeDecodeError (a ValueError); deep nesting can raise RecursionError.
    except (msgspec.DecodeError, ValueError, RecursionError):
        return stdlib_decode(raw), False


def stdlib_decode(raw: bytes) -> Any:
    """The reference decoder: `json.loads`, refusing NaN and Infinity, as a 400 HookError."""
    try:
        return json.loads(raw, parse_constant=_no_constant)  # NaN, Infinity: Python extensions, not JSON
    except _NonFinite as exc:
        raise HookError(400, f"{exc} is not JSON: numbers must be finite", code="malformed-json") from exc
    except (ValueError, RecursionError) as exc:
        raise HookError(400, "request body is not valid JSON", code="malformed-json") from exc


# Only a body holding one of these can decode to a NUL or a lone surrogate: "\u0000", an escaped surrogate,
# or a surrogate's UTF-8-style bytes (json.loads decodes with surrogatepass). Raw control bytes are not JSON.
_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def bad_string(raw: bytes, body: Any, surrogates: bool = True) -> str | None:
    """Where the first string (key or value) holding NUL or an unpaired surrogate is, as a JSON path.

    Such strings are never valid FHIR or feedback, PostgreSQL refuses NUL in text (a 503 an EHR would retry
    forever) and a surrogate cannot be encoded (a 500). Bodies without a suspect escape skip the walk.
    `surrogates=False`: the decoder refused unpaired surrogates already (msgspec does), so only an escaped NUL
    is suspect, and a plain substring search (~0.1 ms for 213 KiB, the regex took ~0.7 ms) decides.
    """
    if not (_SUSPECT.search(raw) if surrogates else b"\\u0000" in raw):
        return None
    stack: list[tuple[Any, str]] = [(body, "$")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _BAD_CHAR.search(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if _BAD_CHAR.search(key):
                    return f"{path} (a key)"
                stack.append((item, f"{path}.{key[:40]}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
    return None


def resume_gc(_exc: BaseException | None = None) -> None:
    """Teardown: the GC paused by `json_body` for a large body runs again."""
    if g.pop("gc_paused", False):
        gc.enable()
