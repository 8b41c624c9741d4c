"""Flask application factory. Nothing happens at import time; everything is built in `create_app`.

The engine knows no medicine: the caller hands it the services to serve (HAPI FHIR's CDS Hooks module
is given its definitions class the same way). The clinical composition root is `hooks.app`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from cds import analytics, feedback, metrics, routes
from cds.authentication import build_authenticator
from cds.authentication import install as install_auth
from cds.card_ids import CardIds
from cds.config import Settings
from cds.fhir import FhirClient
from cds.logs import IdHasher, configure, log
from cds.netguard import NetGuard
from cds.pipeline import Engine
from cds.registry import Registry, Service
from cds.request import HookError
from cds.store import Store
from cds.suppression import Suppressor
from cds.web import State, error_body, resume_gc

logger = logging.getLogger("cds.app")


# Endpoints whose refusals are logged (by the endpoint itself when it can, else here): every refused hook
# call or feedback post leaves its reason in the log, whatever stage refused it.
_REJECTION_EVENTS = {"cds.invoke": "hook.rejected", "feedback.receive": "feedback.rejected"}


def _log_rejection(status: int, code: str, message: str) -> None:
    event = _REJECTION_EVENTS.get(request.endpoint or "")
    if event:
        service = (request.view_args or {}).get("service_id", "")
        log(
            logger,
            logging.WARNING,
            event,
            status=status,
            reason=code,
            message=message[:300],
            service=service[:80],
        )


def create_app(config: Settings | None, services: Iterable[Service]) -> Flask:
    """Build the app that serves `services` (the clinical ones come from `hooks.app.services`)."""
    settings = config or Settings.load()
    configure(settings.log_level, settings.log_to_stderr)
    registry = Registry(services)
    guard = NetGuard(settings.fhir_allowed_hosts)
    fhir = FhirClient(
        connect_timeout=settings.fhir_connect_timeout_s,
        read_timeout=settings.fhir_read_timeout_s,
        max_pages=settings.fhir_max_pages,
        page_size=settings.fhir_page_size,
        max_response_bytes=settings.fhir_max_response_bytes,
        max_buffered_bytes=settings.fhir_max_buffered_bytes,
        workers=settings.fhir_workers,
        per_call_parallel=settings.fhir_per_call_parallel,
        guard=guard,
    )
    key = settings.resolved_hash_key()
    engine = Engine(settings, fhir, IdHasher(key), guard, CardIds(key))
    authenticator = build_authenticator(settings)

    app = Flask("spine-cds")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    # Feedback and the card audit; the store migrates its schema, close_all() flushes it at shutdown.
    store = Store.from_settings(settings)
    app.extensions["cds"] = State(settings, registry, engine, store)
    engine.suppressor = Suppressor(
        store, registry, timeout_s=settings.suppression_timeout_s, retry_s=settings.suppression_retry_s
    )
    CORS(
        app,
        origins=settings.cors_origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
        allow_private_network=settings.profile == "dev",
    )
    install_auth(app, settings, authenticator)
    for blueprint in (routes.blueprint, feedback.blueprint, analytics.blueprint):
        app.register_blueprint(blueprint)
    metrics.install(app)  # errors by status; /metrics itself is a route
    app.teardown_request(resume_gc)

    @app.before_request
    def _limit_body():
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            raise RequestEntityTooLarge()

    @app.errorhandler(HookError)
    def _hook_error(err: HookError):
        if not err.logged:
            _log_rejection(err.status, err.code, err.message)
        response = error_body(err.status, err.code, err.message)
        if err.retry_after is not None:
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "-")
        messages = {
            404: "no such endpoint or service",
            405: "method not allowed on this endpoint",
            413: f"request body exceeds {settings.max_body_bytes} bytes",
        }
        message = messages.get(err.code or 0, err.description or code)
        _log_rejection(err.code or 500, code, message)
        response = error_body(err.code or 500, code, message)
        allowed = getattr(err, "valid_methods", None)
        if allowed:  # RFC 9110: a 405 names the methods the resource supports
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log(logger, logging.ERROR, "internal.error", error_type=type(err).__name__)
        return error_body(500, "internal-error", "the service failed to process this request")

    log(
        logger,
        logging.INFO,
        "app.start",
        profile=settings.profile,
        services=[s.id for s in registry],
        cors=settings.cors_origins,
    )
    return app
