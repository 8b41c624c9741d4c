"""What the CDS committee asks: per service and rule, how often a card is accepted or overridden, and why.

A card counts once as accepted (or overridden) however many feedback items it received, so rates are
shares of cards shown. Override reasons count feedback items. Cards withheld because feedback silences
their rule for the patient (`suppressed_cards`) are counted apart, never as shown. All grouping happens
in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cds.store import db
from cds.store.schema import feedback, served_cards, suppressed_cards


@dataclass
class RuleStats:
    service: str
    rule: str | None
    shown: int
    accepted: int
    overridden: int
    override_reasons: dict[str, int] = field(default_factory=dict)  # code -> count, most frequent first
    reason_labels: dict[str, str] = field(default_factory=dict)  # code -> display
    suppressed: int = 0  # cards the rule produced but feedback silenced (not shown)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.shown if self.shown else 0.0

    @property
    def override_rate(self) -> float:
        return self.overridden / self.shown if self.shown else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "rule": self.rule,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "suppressed": self.suppressed,
            "override_reasons": self.override_reasons,
        }


def _card_outcomes() -> Any:
    """One row per card with feedback: did any item accept it, did any override it."""
    accepted = sa.case((feedback.c.outcome == "accepted", 1), else_=0)
    overridden = sa.case((feedback.c.outcome == "overridden", 1), else_=0)
    return (
        sa.select(
            feedback.c.card_uuid,
            sa.func.max(accepted).label("accepted"),
            sa.func.max(overridden).label("overridden"),
        )
        .group_by(feedback.c.card_uuid)
        .subquery("outcomes")
    )


def _since(since: datetime | None) -> Any:
    return served_cards.c.created_at >= since if since else sa.true()


def rule_stats(conn: sa.Connection, since: datetime | None = None) -> list[RuleStats]:
    s, o = served_cards, _card_outcomes()
    rows = conn.execute(
        sa.select(
            s.c.service,
            s.c.rule,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(o.c.accepted), 0),
            sa.func.coalesce(sa.func.sum(o.c.overridden), 0),
        )
        .select_from(s.outerjoin(o, o.c.card_uuid == s.c.card_uuid))
        .where(_since(since))
        .group_by(s.c.service, s.c.rule)
    ).all()
    stats = {
        (svc, rule): RuleStats(svc, rule, int(shown), int(acc), int(ovr))
        for svc, rule, shown, acc, ovr in rows
    }
    reasons = conn.execute(
        sa.select(
            s.c.service,
            s.c.rule,
            feedback.c.override_code,
            sa.func.max(feedback.c.override_display),
            sa.func.count(),
        )
        .select_from(feedback.join(s, s.c.card_uuid == feedback.c.card_uuid))
        .where(_since(since), feedback.c.outcome == "overridden", feedback.c.override_code.is_not(None))
        .group_by(s.c.service, s.c.rule, feedback.c.override_code)
        .order_by(sa.func.count().desc(), feedback.c.override_code)
    ).all()
    for svc, rule, code, display, count in reasons:
        entry = stats[(svc, rule)]
        entry.override_reasons[code] = int(count)
        if display:
            entry.reason_labels[code] = display
    for svc, rule, count in suppressed(conn, since):
        stats.setdefault((svc, rule), RuleStats(svc, rule, 0, 0, 0)).suppressed = count
    return sorted(stats.values(), key=lambda r: (r.service, r.rule or ""))


def suppressed(conn: sa.Connection, since: datetime | None = None) -> list[tuple[str, str, int]]:
    """(service, rule, cards withheld) since `since`."""
    x = suppressed_cards
    rows = conn.execute(
        sa.select(x.c.service, x.c.rule, sa.func.count())
        .where(x.c.created_at >= since if since else sa.true())
        .group_by(x.c.service, x.c.rule)
    ).all()
    return [(svc, rule, int(n)) for svc, rule, n in rows]


def daily(conn: sa.Connection, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per rule and UTC day: cards shown, cards accepted, cards overridden."""
    s, o = served_cards, _card_outcomes()
    bucket = db.day(conn, s.c.created_at).label("day")
    rows = conn.execute(
        sa.select(
            s.c.rule,
            bucket,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(o.c.accepted), 0),
            sa.func.coalesce(sa.func.sum(o.c.overridden), 0),
        )
        .select_from(s.outerjoin(o, o.c.card_uuid == s.c.card_uuid))
        .where(_since(since))
        .group_by(s.c.rule, bucket)
        .order_by(bucket, s.c.rule)
    ).all()
    return [
        {"rule": rule, "day": str(day), "shown": int(n), "accepted": int(a), "overridden": int(v)}
        for rule, day, n, a, v in rows
    ]


def top_reasons(conn: sa.Connection, since: datetime | None = None, limit: int = 10) -> list[dict[str, Any]]:
    f, s = feedback, served_cards
    rows = conn.execute(
        sa.select(f.c.override_code, sa.func.max(f.c.override_display), sa.func.count())
        .select_from(f.join(s, s.c.card_uuid == f.c.card_uuid))
        .where(_since(since), f.c.outcome == "overridden", f.c.override_code.is_not(None))
        .group_by(f.c.override_code)
        .order_by(sa.func.count().desc(), f.c.override_code)
        .limit(limit)
    ).all()
    return [{"code": code, "display": display or code, "count": int(n)} for code, display, n in rows]


def volumes(conn: sa.Connection, since: datetime | None = None) -> dict[str, int]:
    """Totals for the page header: cards shown, feedback items, feedback for never-served cards, and cards
    suppressed."""
    fb_since = feedback.c.received_at >= since if since else sa.true()
    shown = conn.execute(
        sa.select(sa.func.count()).select_from(served_cards).where(_since(since))
    ).scalar_one()
    items = conn.execute(sa.select(sa.func.count()).select_from(feedback).where(fb_since)).scalar_one()
    unknown = conn.execute(
        sa.select(sa.func.count()).select_from(feedback).where(fb_since, feedback.c.unknown_card.is_(True))
    ).scalar_one()
    held = sum(n for _svc, _rule, n in suppressed(conn, since))
    return {
        "shown": int(shown),
        "feedback": int(items),
        "unknown_card_feedback": int(unknown),
        "suppressed": held,
    }
