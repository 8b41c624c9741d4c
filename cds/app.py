"""Flask application factory. Nothing happens at import time; everything is built in `create_app`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from cds.config import Settings
from cds.fhir import FhirClient
from cds.logs import IdHasher, configure, log
from cds.netguard import NetGuard
from cds.pipeline import Engine
from cds.registry import Registry, Service
from cds.request import HookError
from cds.security import build_authenticator
from cds.security import install as install_auth
from cds.store import Store

logger = logging.getLogger("cds.app")


@dataclass
class State:
    settings: Settings
    registry: Registry
    engine: Engine
    store: Store | None = None  # feedback + card audit (cds.store); flush()/close() at shutdown


def error_body(status: int, code: str, message: str):
    response = jsonify({"error": code, "message": message, "status": status})
    response.status_code = status
    return response


def create_app(config: Settings | None = None, services: Iterable[Service] | None = None) -> Flask:
    """Build the app. `services` replaces the production registry (tests use it for test-only services)."""
    settings = config or Settings.load()
    configure(settings.log_level, settings.log_to_stderr)
    if services is None:
        from hooks import services as production_services

        services = production_services(settings)
    registry = Registry(services)
    guard = NetGuard(settings.fhir_allowed_hosts)
    fhir = FhirClient(
        connect_timeout=settings.fhir_connect_timeout_s,
        read_timeout=settings.fhir_read_timeout_s,
        max_pages=settings.fhir_max_pages,
        page_size=settings.fhir_page_size,
        max_response_bytes=settings.fhir_max_response_bytes,
        workers=settings.fhir_workers,
        guard=guard,
    )
    engine = Engine(settings, fhir, IdHasher(settings.resolved_hash_key()), guard)
    authenticator = build_authenticator(settings)

    app = Flask("spine-cds")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["cds"] = State(settings, registry, engine)
    CORS(
        app,
        origins=settings.cors_origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
        allow_private_network=settings.profile == "dev",
    )

    install_auth(app, settings, authenticator)

    from cds.routes import blueprint

    app.register_blueprint(blueprint)

    # Feedback, card audit and /analytics (issue 6). Migrates the schema; close_all() flushes at shutdown.
    from cds.feedback import install as install_feedback

    install_feedback(app, Store.from_settings(settings))

    from cds.metrics import install as install_metrics  # errors by status; /metrics is in routes

    install_metrics(app)

    @app.before_request
    def _limit_body():
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            raise RequestEntityTooLarge()

    @app.errorhandler(HookError)
    def _hook_error(err: HookError):
        return error_body(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "-")
        messages = {
            404: "no such endpoint or service",
            405: "method not allowed on this endpoint",
            413: f"request body exceeds {settings.max_body_bytes} bytes",
        }
        return error_body(err.code or 500, code, messages.get(err.code or 0, err.description or code))

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
