"""Wiring of CDS client authentication into Flask: who is checked, against which audience, and how
a failure looks (401, `WWW-Authenticate: Bearer`, no detail; the reason goes to the log only)."""

from __future__ import annotations

import logging

import requests
from flask import Flask, g, jsonify, request

from cds import metrics
from cds.client_trust import (
    Authenticator,
    AuthError,
    JwksCache,
    MemoryReplayCache,
    RedisReplayCache,
    TrustUnavailable,
    load_trusted_clients,
)
from cds.config import Settings, StartupError
from cds.logs import log

logger = logging.getLogger("cds.auth")
PROTECTED = ("/cds-services", "/analytics")
RETRY_AFTER_S = 1  # a Redis replay cache that failed over or restarted answers again within seconds


def build_authenticator(settings: Settings) -> Authenticator | None:
    if not settings.auth_required:
        log(
            logger,
            logging.WARNING,
            "auth.disabled",
            warning="CDS_AUTH is off: ANY caller can invoke the services. Never use it with real data.",
        )
        return None
    if settings.trusted_clients is None:
        raise StartupError(
            "CDS_AUTH=required needs CDS_TRUSTED_CLIENTS (a JSON or YAML list of trusted clients)"
        )
    try:
        clients = load_trusted_clients(settings.trusted_clients)
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot load trusted clients: {exc}") from exc
    if not clients:
        raise StartupError(f"{settings.trusted_clients} lists no trusted clients")
    replay = (
        RedisReplayCache(settings.redis_url, settings.redis_key_prefix)
        if settings.redis_url
        else MemoryReplayCache()
    )
    jwks = JwksCache(requests.Session(), settings.jwks_ttl_s, settings.jwks_refetch_interval_s)
    log(
        logger,
        logging.INFO,
        "auth.enabled",
        clients=[c.iss for c in clients],
        replay_cache="redis" if settings.redis_url else "memory",
    )
    return Authenticator(
        clients, jwks, replay, settings.jwt_algorithms, settings.jwt_leeway_s, settings.jwt_max_lifetime_s
    )


def audiences(settings: Settings) -> list[str]:
    """The exact endpoint URLs a token may be addressed to (public base URL and its aliases)."""
    bases = [settings.public_base_url or request.host_url, *settings.aud_aliases]
    return [b.rstrip("/") + request.path for b in bases]


def count_rejection(reason: str) -> None:
    metrics.auth_rejected(reason.split(":")[0])


def install(app: Flask, settings: Settings, authenticator: Authenticator | None) -> None:
    @app.before_request
    def _authenticate():
        g.caller = None
        if authenticator is None or request.method == "OPTIONS" or not request.path.startswith(PROTECTED):
            return None
        try:
            g.caller = authenticator.verify(request.headers.get("Authorization"), audiences(settings))
        except AuthError as err:
            log(logger, logging.WARNING, "auth.rejected", reason=err.reason, path=request.path)
            count_rejection(err.reason)
            response = jsonify({"error": "unauthorized", "message": "authentication required", "status": 401})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except TrustUnavailable as err:  # Redis down: the credentials may be fine, so "try again"
            log(logger, logging.ERROR, "auth.unavailable", reason=err.reason, path=request.path)
            count_rejection(err.reason)
            message = "cannot verify the token right now; retry later"
            response = jsonify({"error": "unavailable", "message": message, "status": 503})
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        return None
