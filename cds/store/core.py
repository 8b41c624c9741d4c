"""The store: card audit (asynchronous, flushed on shutdown) and feedback (committed before the 200).

One `Store` per process and database. Every live store is flushed and closed at interpreter exit
(`atexit`), and `close_all()` is what gunicorn's `worker_exit` hook and `cds serve`'s SIGTERM handler call.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cds.store import db
from cds.store.schema import feedback, served_cards, suppressed_cards
from cds.store.writer import AuditWriter, Row, transient

if TYPE_CHECKING:
    from cds.config import Settings

_live: weakref.WeakSet[Store] = weakref.WeakSet()


def utcnow() -> datetime:
    """Naive UTC, the convention of every stored timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp (already validated) as naive UTC."""
    return to_naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))


def feedback_key(item: Mapping[str, Any]) -> str:
    """Same card, outcome, instant, accepted suggestions and override reason = the same item.

    The timestamp is normalised to UTC so `...Z` and `...+00:00` are one item; the reason's display text
    is left out because clients resend the same code with different wording.
    """
    reason = item.get("overrideReason") or {}
    coding = reason.get("reason") or {}
    canonical = {
        "card": item["card"],
        "outcome": item["outcome"],
        "at": parse_timestamp(item["outcomeTimestamp"]).isoformat(timespec="microseconds"),
        "accepted": sorted(a["id"] for a in item.get("acceptedSuggestions") or []),
        "reason": [coding.get("system"), coding.get("code")] if coding else None,
        "comment": reason.get("userComment"),
    }
    raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def offered(card: Any) -> tuple[list[dict[str, str]] | None, dict[str, list[dict[str, str]]] | None]:
    """What a card offered, as the audit keeps it: its override reasons, and per suggestion the codes of
    the orders its create actions would write (what "the chart shows the order" is checked against)."""
    reasons = [r.model_dump(exclude_none=True) for r in card.overrideReasons] or None
    orders: dict[str, list[dict[str, str]]] = {}
    for suggestion in card.suggestions:
        codes = [
            {"type": action.resource["resourceType"], "system": c["system"], "code": c["code"]}
            for action in suggestion.actions
            if action.type == "create" and action.resource
            for c in (action.resource.get("code") or {}).get("coding") or []
            if isinstance(c, dict) and c.get("system") and c.get("code")
        ]
        if codes:
            orders[suggestion.uuid] = codes
    return reasons, orders or None


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    stored: int  # new rows; received - stored were already stored (idempotent re-post)
    unknown_cards: int  # stored items whose card uuid was never served


class Store:
    def __init__(
        self,
        url: str,
        *,
        queue_max: int = 10_000,
        batch_max: int = 500,
        migrate: bool = True,
        timeouts: db.Timeouts | None = None,
    ) -> None:
        self.timeouts = timeouts or db.Timeouts()
        self.engine = db.make_engine(url, self.timeouts)
        if migrate:
            db.upgrade(self.engine)
            if self.engine.url.database not in (None, "", ":memory:"):
                self.engine.dispose()  # no connection survives into a forked worker
        self.writer = AuditWriter(self._write_cards, queue_max, batch_max, may_wait=self.available)
        # Card uuids accepted for audit but not yet committed: feedback for them is not "unknown".
        self._queued: set[str] = set()
        self._queued_lock = threading.Lock()
        self._down_until = 0.0  # monotonic: the database failed; feedback answers 503 at once until then
        self._ping: _Ping | None = None
        self._ping_lock = threading.Lock()
        _live.add(self)

    @classmethod
    def from_settings(cls, settings: Settings, migrate: bool = True) -> Store:
        return cls(
            settings.resolved_database_url(),
            queue_max=settings.audit_queue_max,
            batch_max=settings.audit_batch_max,
            migrate=migrate,
            timeouts=db.Timeouts(
                connect_s=settings.db_connect_timeout_s,
                statement_s=settings.db_statement_timeout_s,
                pool_s=settings.db_pool_timeout_s,
                ready_s=settings.db_ready_timeout_s,
                retry_after_s=settings.db_retry_after_s,
                report_s=settings.db_report_timeout_s,
            ),
        )

    # -- availability -------------------------------------------------------------------------------

    @contextmanager
    def bounded(self, seconds: float | None = None, *, trip: bool = True) -> Iterator[None]:
        """One database operation on the request path: every wait bounded by `seconds` (the statement
        timeout by default). With `trip`, a failure that says the database is unavailable makes feedback
        answer 503 at once for `retry_after_s`, and a success ends that."""
        with db.deadline(self.timeouts.statement_s if seconds is None else seconds):
            try:
                yield
            except Exception as exc:
                if trip and transient(exc):
                    self._down_until = time.monotonic() + self.timeouts.retry_after_s
                raise
        if trip:
            self._down_until = 0.0

    def unavailable_for(self) -> float:
        """Seconds during which the database counts as down after a failure (0: try it)."""
        return max(0.0, self._down_until - time.monotonic())

    def available(self) -> bool:
        return self.unavailable_for() == 0.0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self) -> sa.Connection:
        """A read-only connection (SQLite: deferred BEGIN, so readers never block writers)."""
        return self.engine.connect().execution_options(readonly=True)

    # -- card audit ---------------------------------------------------------------------------------

    @staticmethod
    def card_rows(
        service: str, hook_instance: str, patient_hash: str | None, cards: Iterable[Any], at: datetime | None
    ) -> list[Row]:
        created = to_naive_utc(at) if at else utcnow()
        return [
            {
                "card_uuid": card.uuid,
                "service": service,
                "rule": card.rule,
                "indicator": card.indicator,
                "hook_instance": hook_instance,
                "patient_hash": patient_hash,
                "created_at": created,
                "suggestion_uuids": [s.uuid for s in card.suggestions],
                **dict(zip(("override_reasons", "suggestion_orders"), offered(card), strict=True)),
            }
            for card in cards
        ]

    def record_served(
        self,
        service: str,
        hook_instance: str,
        patient_hash: str | None,
        cards: Iterable[Any],
        at: datetime | None = None,
        sync: bool = False,
    ) -> int:
        """Audit the cards of one response. Returns at once; `sync=True` writes before returning."""
        rows = self.card_rows(service, hook_instance, patient_hash, cards, at)
        with self._queued_lock:
            self._queued.update(r["card_uuid"] for r in rows)
        if sync:
            self._write_cards(rows)
        else:
            self.writer.submit(rows)
        return len(rows)

    def record_suppressed(
        self,
        service: str,
        hook_instance: str,
        patient_hash: str | None,
        withheld: Iterable[Any],
        at: datetime | None = None,
    ) -> int:
        """Audit the cards a response withheld (`cds.suppression.Withheld`), off the request path too."""
        created = to_naive_utc(at) if at else utcnow()
        rows = [
            {
                "service": service,
                "rule": w.card.rule,
                "indicator": w.card.indicator,
                "hook_instance": hook_instance,
                "patient_hash": patient_hash,
                "created_at": created,
                "cause": w.cause,
                "by_card": w.by_card,
                "until": to_naive_utc(w.until),
            }
            for w in withheld
        ]
        if rows:
            self.writer.submit(rows)
        return len(rows)

    def _write_cards(self, rows: Sequence[Row]) -> None:
        withheld = [r for r in rows if "cause" in r]  # record_suppressed rows share the queue
        rows = [r for r in rows if "cause" not in r]
        uuids = [r["card_uuid"] for r in rows]
        with self.bounded(), self.engine.begin() as conn:
            db.advisory_lock(conn, db.AUDIT_LOCK)
            if withheld:
                conn.execute(sa.insert(suppressed_cards), withheld)
            if not rows:
                return
            conn.execute(db.insert_ignore(conn, served_cards, "card_uuid"), list(rows))
            # Feedback that overtook its card's audit row (queue, or another worker) is known after all.
            conn.execute(
                sa.update(feedback)
                .where(feedback.c.unknown_card.is_(True), feedback.c.card_uuid.in_(uuids))
                .values(unknown_card=False)
            )
        with self._queued_lock:
            self._queued.difference_update(uuids)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        flushed = self.writer.close(timeout)
        _live.discard(self)
        self.engine.dispose()
        return flushed

    # -- feedback -----------------------------------------------------------------------------------

    def save_feedback(
        self,
        service: str,
        items: Sequence[Mapping[str, Any]],
        at: datetime | None = None,
        issued: Callable[[str], bool] | None = None,
    ) -> FeedbackResult:
        """Store validated feedback items in one transaction, committed before this returns.

        A card is known when `issued` vouches for its uuid (signed by this service: `cds.card_ids`), when
        its audit row is queued in this process, or when the row is committed.
        """
        received_at = to_naive_utc(at) if at else utcnow()
        self._flush_if_queued(items)
        rows: dict[str, Row] = {}
        for item in items:
            reason = item.get("overrideReason") or {}
            coding = reason.get("reason") or {}
            key = feedback_key(item)
            rows.setdefault(
                key,
                {
                    "idempotency_key": key,
                    "service": service,
                    "card_uuid": item["card"],
                    "outcome": item["outcome"],
                    "outcome_at": parse_timestamp(item["outcomeTimestamp"]),
                    "accepted_suggestions": [a["id"] for a in item.get("acceptedSuggestions") or []],
                    "override_system": coding.get("system"),
                    "override_code": coding.get("code"),
                    "override_display": coding.get("display"),
                    "user_comment": reason.get("userComment"),
                    "received_at": received_at,
                },
            )
        with self.bounded(), self.engine.begin() as conn:
            # Shared: many feedback posts at once, but never interleaved with an audit batch (see above).
            db.advisory_lock(conn, db.AUDIT_LOCK, shared=True)
            cards = {r["card_uuid"] for r in rows.values()}
            known = {c for c in cards if issued(c)} if issued else set()
            with self._queued_lock:  # read before the table: a row leaves this set only once committed
                known |= cards & self._queued
            offered_reasons = {
                uuid: reasons or []
                for uuid, reasons in conn.execute(
                    sa.select(served_cards.c.card_uuid, served_cards.c.override_reasons).where(
                        served_cards.c.card_uuid.in_(cards)
                    )
                )
            }
            known |= set(offered_reasons)
            for row in rows.values():
                row["unknown_card"] = row["card_uuid"] not in known
                if row["override_code"] is not None and not row["override_display"]:
                    row["override_display"] = _served_display(row, offered_reasons.get(row["card_uuid"], []))
            stmt = db.insert_ignore(conn, feedback, "idempotency_key").returning(feedback.c.idempotency_key)
            stored = set(conn.execute(stmt, list(rows.values())).scalars())
        unknown = sum(1 for k in stored if rows[k]["unknown_card"])
        return FeedbackResult(received=len(items), stored=len(stored), unknown_cards=unknown)

    def _flush_if_queued(self, items: Sequence[Mapping[str, Any]], timeout: float = 5.0) -> None:
        """A reason without display is read against its card as served: if that card's audit row is still
        queued in this process (feedback within milliseconds of the response), write it first."""
        wanted = {
            item["card"]
            for item in items
            if ((item.get("overrideReason") or {}).get("reason") or {}).get("display") is None
        }
        with self._queued_lock:
            queued = bool(wanted & self._queued)
        if queued:  # not past the statement timeout: a hung database must not hold the post longer
            self.flush(min(timeout, self.timeouts.statement_s))

    # -- retention ----------------------------------------------------------------------------------

    def prune(self, older_than_days: float, now: datetime | None = None) -> dict[str, int]:
        """Delete audit rows served, and feedback received, before now - older_than_days."""
        if older_than_days < 0:
            raise ValueError("--older-than must be zero or more days")
        cutoff = (to_naive_utc(now) if now else utcnow()) - timedelta(days=older_than_days)
        self.flush()
        with self.engine.begin() as conn:
            fb = conn.execute(sa.delete(feedback).where(feedback.c.received_at < cutoff)).rowcount
            cards = conn.execute(sa.delete(served_cards).where(served_cards.c.created_at < cutoff)).rowcount
            conn.execute(sa.delete(suppressed_cards).where(suppressed_cards.c.created_at < cutoff))
        return {"served_cards": cards, "feedback": fb}

    def ping(self, timeout: float | None = None) -> bool:
        """Readiness: did the database answer within `timeout` (`ready_s`)? Always returns in time.

        The check runs on a helper thread so that even a connect attempt (libpq: 2 s at least) cannot
        hold the probe past its timeout. One check at a time: a probe that comes while one is still
        running waits for that one.
        """
        timeout = self.timeouts.ready_s if timeout is None else timeout
        with self._ping_lock:
            if self._ping is None or self._ping.done.is_set():
                self._ping = _Ping(self, timeout)
            current = self._ping
        if not current.done.wait(timeout):
            return False
        if current.ok:
            self._down_until = 0.0
        return current.ok

    def _ping_now(self, timeout: float) -> bool:
        try:
            with db.deadline(timeout), self.read() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False


class _Ping:
    """One readiness check running on its own daemon thread."""

    def __init__(self, store: Store, timeout: float) -> None:
        self.ok = False
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(store, timeout), name="cds-db-ping", daemon=True).start()

    def _run(self, store: Store, timeout: float) -> None:
        try:
            self.ok = store._ping_now(timeout)
        finally:
            self.done.set()


def _served_display(row: Row, reasons: list[dict[str, str]]) -> str | None:
    """The display of the card's own override reason with this code (and system, when the client sent
    one); None for a code the card did not offer, which is stored as given."""
    for reason in reasons:
        if reason.get("code") == row["override_code"] and row["override_system"] in (
            None,
            reason.get("system"),
        ):
            return reason.get("display")
    return None


def close_all(timeout: float = 30.0) -> bool:
    """Flush and close every store of this process (graceful shutdown)."""
    return all([store.close(timeout) for store in list(_live)])


def _after_fork_in_child() -> None:
    for store in list(_live):
        store.writer.after_fork()
        store._queued, store._queued_lock = set(), threading.Lock()
        store._ping, store._ping_lock, store._down_until = None, threading.Lock(), 0.0
        store.engine.dispose(close=False)


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
