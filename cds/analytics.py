"""`GET /analytics`: the CDS committee's page, rendered on the server as HTML with inline SVG charts.

No JavaScript and no CDN (hospital networks are often closed); the Content-Security-Policy forbids
scripts outright. When authentication is off, only loopback clients may read it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, make_response, render_template, request
from sqlalchemy.exc import SQLAlchemyError

from cds.logs import log
from cds.request import HookError
from cds.store import report
from cds.store.core import utcnow
from cds.web import get_store, state

logger = logging.getLogger("cds.analytics")
blueprint = Blueprint("analytics", __name__, template_folder="templates")

DEFAULT_DAYS = 90
MAX_DAYS = 366  # chart width; older data stays in the table and in `cds report --since`
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 760, 280, 48, 16, 16, 40
_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)', re.IGNORECASE)
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'self'"
)


def is_loopback(addr: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((addr or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _client_addresses() -> list[str | None]:
    """The peer, plus any client a proxy says it forwarded: a local proxy must not open the page to all."""
    addrs: list[str | None] = [request.remote_addr]
    for value in request.headers.getlist("X-Forwarded-For"):
        addrs += [a.strip() for a in value.split(",") if a.strip()]
    for value in request.headers.getlist("Forwarded"):
        addrs += _FORWARDED_FOR.findall(value) or ["unknown"]
    return addrs


@blueprint.before_request
def _loopback_only():
    settings = state().settings
    if getattr(settings, "auth_required", False):
        return None  # the JWT check installed by create_app guards /analytics
    if not all(is_loopback(a) for a in _client_addresses()):
        raise HookError(
            403, "analytics is only served to loopback clients when auth is off", code="forbidden"
        )
    return None


@dataclass
class Series:
    rule: str
    color: str
    acceptance: list[dict[str, Any]] = field(default_factory=list)
    override: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def polyline(points: list[dict[str, Any]]) -> str:
        return " ".join(f"{p['x']:.1f},{p['y']:.1f}" for p in points)


def _days(first: date, last: date) -> list[date]:
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _anchor(i: int, n: int) -> str:
    """Edge labels grow inwards so they are not clipped by the SVG box."""
    if n > 1 and i == 0:
        return "start"
    return "end" if n > 1 and i == n - 1 else "middle"


def build_charts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Coordinates for the rate chart (one solid and one dashed line per rule) and the volume bars."""
    if not rows:
        return {"days": [], "series": [], "bars": [], "peak": 0, "x_labels": [], "y_ticks": []}
    days = _days(date.fromisoformat(rows[0]["day"]), date.fromisoformat(rows[-1]["day"]))
    index = {d.isoformat(): i for i, d in enumerate(days)}
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / (len(days) - 1) if len(days) > 1 else 0.0

    def x(i: int) -> float:
        return LEFT + (i * step if len(days) > 1 else plot_w / 2)

    def y(rate: float) -> float:
        return TOP + (1 - rate) * plot_h

    rules = sorted({r["rule"] or "(none)" for r in rows})
    series = {rule: Series(rule, PALETTE[i % len(PALETTE)]) for i, rule in enumerate(rules)}
    per_day: dict[str, int] = {}
    for r in rows:
        if r["day"] not in index:
            continue
        per_day[r["day"]] = per_day.get(r["day"], 0) + r["shown"]
        s, i = series[r["rule"] or "(none)"], index[r["day"]]
        for kind, count in (("acceptance", r["accepted"]), ("override", r["overridden"])):
            rate = count / r["shown"] if r["shown"] else 0.0
            point = {
                "x": x(i),
                "y": y(rate),
                "day": r["day"],
                "rate": rate,
                "count": count,
                "shown": r["shown"],
            }
            getattr(s, kind).append(point)
    peak = max(per_day.values(), default=1) or 1
    bar_w = max(2.0, min(24.0, (step or plot_w) * 0.7))
    bars = []
    for d, n in sorted(per_day.items()):
        left = min(max(x(index[d]) - bar_w / 2, LEFT), W - RIGHT - bar_w)  # stay inside the axis
        bars.append(
            {"day": d, "shown": n, "x": left, "w": bar_w, "h": n / peak * 100, "y": 110 - n / peak * 100}
        )
    label_every = max(1, len(days) // 8)
    shown = [i for i in range(len(days)) if i % label_every == 0]
    x_labels = [{"x": x(i), "text": days[i].isoformat(), "anchor": _anchor(i, len(days))} for i in shown]
    y_ticks = [{"y": y(v / 100), "text": f"{v}%"} for v in (0, 25, 50, 75, 100)]
    return {
        "days": days,
        "series": list(series.values()),
        "bars": bars,
        "peak": peak,
        "x_labels": x_labels,
        "y_ticks": y_ticks,
    }


def _since() -> datetime:
    raw = request.args.get("since")
    if not raw:
        return (utcnow() - timedelta(days=DEFAULT_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(raw)
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except (ValueError, OverflowError) as exc:
        raise HookError(400, "since must be a date such as 2026-01-01", code="invalid-parameter") from exc


@blueprint.get("/analytics")
def page():
    store = get_store()
    if store is None:
        raise HookError(503, "feedback storage is not configured", code="unavailable")
    since = _since()
    try:
        with store.bounded(store.timeouts.report_s, trip=False), store.read() as conn:
            stats = report.rule_stats(conn, since)
            rows = report.daily(conn, since)
            reasons = report.top_reasons(conn, since)
            totals = report.volumes(conn, since)
    except SQLAlchemyError as exc:
        log(logger, logging.ERROR, "analytics.store_failed", error_type=type(exc).__name__)
        retry = store.timeouts.retry_after_s
        raise HookError(503, "the audit database did not answer; retry later", "unavailable", retry) from exc
    html = render_template(
        "analytics.html",
        since=since.date().isoformat(),
        generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        stats=stats,
        reasons=reasons,
        totals=totals,
        chart=build_charts(rows),
        size={"w": W, "h": H, "left": LEFT, "right": W - RIGHT, "top": TOP, "bottom": H - BOTTOM},
        polyline=Series.polyline,
    )
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
