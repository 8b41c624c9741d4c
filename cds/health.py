"""Readiness: may this process take traffic? Liveness (`/healthz`) deliberately checks nothing external.

A pod whose database is down must leave the Service's endpoints (readiness) but must not be
restarted for it (liveness): a restart cannot fix PostgreSQL and would only add cold starts.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text

from cds.logs import log

logger = logging.getLogger("cds.health")


def _check_store(store: Any) -> None:
    """Raise if the audit store cannot reach its database. Prefers the store's own `ping()`."""
    ping = getattr(store, "ping", None)
    if callable(ping):
        if ping() is False:
            raise RuntimeError("store ping returned False")
        return
    engine = getattr(store, "engine", None)
    if engine is not None and hasattr(engine, "connect"):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return
    raise RuntimeError("store has neither ping() nor an engine")


def readiness(state: Any) -> tuple[bool, dict[str, str]]:
    """(ready, checks). Check results are short words; exception text is logged, never returned."""
    checks: dict[str, str] = {}
    settings = getattr(state, "settings", None)
    registry = getattr(state, "registry", None)
    loaded = settings is not None and registry is not None and len(registry) > 0
    checks["config"] = "ok" if loaded else "error"
    store = getattr(state, "store", None)
    if store is None:
        checks["database"] = "not-configured"
    else:
        try:
            _check_store(store)
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not ready", whatever its type
            log(logger, logging.WARNING, "readyz.database_failed", error_type=type(exc).__name__)
            checks["database"] = "error"
    return all(v != "error" for v in checks.values()), checks
