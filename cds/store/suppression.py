"""The one query suppression needs: what feedback the cards of a rule got for a patient, recently.

It reads the audit (`served_cards`: the rule, the keyed patient hash, what the card offered) joined to the
feedback on those cards. Nothing is written here: the suppressions are derived from these rows on every
call, so every worker and pod that shares the database agrees, and a site that changes its periods in the
knowledge files changes them for past feedback too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cds.store.schema import feedback, served_cards


@dataclass(frozen=True)
class FeedbackFact:
    """One feedback item on a served card of the patient, with what that card offered."""

    service: str
    rule: str
    card_uuid: str
    outcome: str
    override_system: str | None
    override_code: str | None
    accepted_suggestions: tuple[str, ...]
    received_at: datetime  # naive UTC, the server's clock (a client's outcomeTimestamp may be off)
    override_reasons: tuple[dict[str, Any], ...]  # the card's own reasons, as served
    suggestion_orders: dict[str, list[dict[str, str]]]  # suggestion uuid -> [{type, system, code}]


def feedback_on_patient(
    conn: sa.Connection, patient_hash: str, rules: Sequence[str], since: datetime
) -> list[FeedbackFact]:
    """Feedback received since `since` on cards of these rules served for this patient (index-backed)."""
    s, f = served_cards, feedback
    rows = conn.execute(
        sa.select(
            s.c.service,
            s.c.rule,
            s.c.card_uuid,
            f.c.outcome,
            f.c.override_system,
            f.c.override_code,
            f.c.accepted_suggestions,
            f.c.received_at,
            s.c.override_reasons,
            s.c.suggestion_orders,
        )
        .select_from(s.join(f, f.c.card_uuid == s.c.card_uuid))
        .where(s.c.patient_hash == patient_hash, s.c.rule.in_(list(rules)), f.c.received_at >= since)
    ).all()
    return [
        FeedbackFact(
            service=r.service,
            rule=r.rule,
            card_uuid=r.card_uuid,
            outcome=r.outcome,
            override_system=r.override_system,
            override_code=r.override_code,
            accepted_suggestions=tuple(r.accepted_suggestions or ()),
            received_at=r.received_at,
            override_reasons=tuple(r.override_reasons or ()),
            suggestion_orders=dict(r.suggestion_orders or {}),
        )
        for r in rows
    ]


def lookup_connection(store_engine: sa.Engine) -> sa.Connection:
    """A connection for one read on the hook path: on PostgreSQL in autocommit, which spares the BEGIN and
    ROLLBACK round trips of a transaction (one SELECT needs none); on SQLite the store's deferred reader."""
    conn = store_engine.connect()
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn.execution_options(readonly=True)
