"""Suppression: what clinicians told the service keeps a rule quiet for a patient for a while.

Alert fatigue retires rules. When a clinician overrides a card with a reason such as "already done
elsewhere", "not indicated for this patient" or "patient declines", showing the same rule to the same
patient again next week teaches them to ignore it. So, per service (its `Service` fields, filled from the
knowledge files by the clinical package):

- `suppress_after`: override reason code -> days the same rule stays silent for that patient. Only a
  reason the card itself offered counts (same system and code), so a client's own reason never silences.
- `suppress_accepted_days`: an accepted suggestion that orders something silences the rule until the chart
  shows that order (same resource type and code, any status but entered-in-error), or the days run out.
  A suggestion that only edits or removes the draft in hand silences nothing: the rule judges the result.
- `never_suppress`: rules that always show (red flags). A `critical` card is never silenced either.

Identity is the keyed patient hash of the audit and the rule id (`source.topic` code); the facts are the
audit and feedback rows in the shared database, so every worker and pod sees the same suppressions. The
hook path never waits on the database for long: the lookup runs on a few daemon threads with a timeout,
and a slow or failing database shows the cards (fail open), logs `suppression.unavailable` and is not
asked again for `retry_s` (a circuit breaker), so an outage costs one timeout, not one per call.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cds.cards import Card
from cds.logs import log
from cds.registry import Registry, Service
from cds.store import Store, db
from cds.store.core import utcnow
from cds.store.suppression import FeedbackFact, feedback_on_patient, lookup_connection

logger = logging.getLogger("cds.suppression")
_NOT_SHOWN = "entered-in-error"  # an order recorded in error was never placed


@dataclass(frozen=True)
class Withheld:
    """A card a rule produced that the response leaves out, and why."""

    card: Card
    cause: str  # "overridden:<reason code>" or "accepted"
    by_card: str  # the earlier card whose feedback silences the rule
    until: datetime  # naive UTC


@dataclass(frozen=True)
class Silence:
    cause: str
    by_card: str
    until: datetime


def suppressible(service: Service, card: Card) -> bool:
    return bool(
        (service.suppress_after or service.suppress_accepted_days)
        and card.rule
        and card.indicator != "critical"
        and card.rule not in service.never_suppress
    )


def chart_shows(orders: Iterable[dict[str, str]], chart: Iterable[dict[str, Any]]) -> bool:
    """Does any resource of the chart (or the call's draft orders) carry one of these ordered codes?"""
    wanted = {(o["type"], o["system"], o["code"]) for o in orders}
    if not wanted:
        return False
    types = {t for t, _, _ in wanted}
    for resource in chart:
        rtype = resource.get("resourceType")
        if rtype not in types or resource.get("status") == _NOT_SHOWN:
            continue
        code = resource.get("code")
        for coding in (code.get("coding") or []) if isinstance(code, dict) else []:
            if isinstance(coding, dict) and (rtype, coding.get("system"), coding.get("code")) in wanted:
                return True
    return False


def silence_of(fact: FeedbackFact, policy: Service, chart: Sequence[dict[str, Any]]) -> Silence | None:
    """The suppression one feedback item asks for under its service's policy (None: it asks for none)."""
    if fact.outcome == "overridden":
        days = policy.suppress_after.get(fact.override_code or "")
        offered = {(r.get("system"), r.get("code")) for r in fact.override_reasons}
        if not days or (fact.override_system, fact.override_code) not in offered:
            return None
        until = fact.received_at + timedelta(days=days)
        return Silence(f"overridden:{fact.override_code}", fact.card_uuid, until)
    if fact.outcome == "accepted" and policy.suppress_accepted_days:
        orders = [o for sid in fact.accepted_suggestions for o in fact.suggestion_orders.get(sid, [])]
        if not orders or chart_shows(orders, chart):
            return None
        until = fact.received_at + timedelta(days=policy.suppress_accepted_days)
        return Silence("accepted", fact.card_uuid, until)
    return None


class Suppressor:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        timeout_s: float = 0.25,
        retry_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.registry = registry
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.clock = clock  # naive UTC, like every stored time
        self._open_until = 0.0  # monotonic time before which the database is not asked (breaker open)
        self._pool = DaemonPool()

    @property
    def horizon_days(self) -> int:
        """The longest period any service asks for: older feedback cannot silence anything."""
        periods = [d for s in self.registry for d in s.suppress_after.values()]
        periods += [s.suppress_accepted_days or 0 for s in self.registry]
        return max(periods, default=0)

    def withhold(
        self, service: Service, patient_hash: str | None, cards: list[Card], chart: Sequence[dict[str, Any]]
    ) -> tuple[list[Card], list[Withheld], str]:
        """Split `cards` into those to show and those feedback silences. The status says what happened:
        "none" (nothing to check), "checked", or "unavailable" (database slow or down: everything shown)."""
        rules = sorted({c.rule for c in cards if c.rule and suppressible(service, c)})
        days = self.horizon_days
        if not rules or not patient_hash or not days:
            return cards, [], "none"
        now = self.clock()
        facts = self._lookup(patient_hash, rules, now - timedelta(days=days))
        if facts is None:
            return cards, [], "unavailable"
        silences: dict[str, Silence] = {}
        for fact in facts:
            policy = self.registry.get(fact.service)
            silence = silence_of(fact, policy, chart) if policy is not None else None
            if silence is None or silence.until <= now:
                continue
            current = silences.get(fact.rule)
            if current is None or silence.until > current.until:
                silences[fact.rule] = silence
        kept: list[Card] = []
        withheld: list[Withheld] = []
        for card in cards:
            silence = silences.get(card.rule or "") if suppressible(service, card) else None
            if silence is None:
                kept.append(card)
            else:
                withheld.append(Withheld(card, silence.cause, silence.by_card, silence.until))
        return kept, withheld, "checked"

    # -- the bounded, fail-open lookup -------------------------------------------------------------

    def _query(self, patient_hash: str, rules: list[str], since: datetime) -> list[FeedbackFact]:
        # Every wait bounded (cds.store.db.deadline): a lookup thread stuck on a database that never
        # answers is freed, and its connection closed, after the statement timeout.
        with db.deadline(self.store.timeouts.statement_s), lookup_connection(self.store.engine) as conn:
            return feedback_on_patient(conn, patient_hash, rules, since)

    def _lookup(self, patient_hash: str, rules: list[str], since: datetime) -> list[FeedbackFact] | None:
        """The query on the lookup threads, waited for at most `timeout_s`; None when the database is slow,
        failing, or left alone after a failure (the breaker)."""
        if time.monotonic() < self._open_until:
            return None
        done, result = self._pool.submit(lambda: self._query(patient_hash, rules, since))
        if not done.wait(self.timeout_s):
            reason = "timeout"
        elif isinstance(result[0], SQLAlchemyError | OSError):
            reason = type(result[0]).__name__
        elif isinstance(result[0], BaseException):
            raise result[0]
        else:
            return result[0]
        self._open_until = time.monotonic() + self.retry_s
        log(logger, logging.WARNING, "suppression.unavailable", reason=reason, retry_in_s=self.retry_s)
        return None


class DaemonPool:
    """A few long-lived daemon threads that run the lookups.

    Long-lived: starting a thread per call cost about 1 ms more of GIL hand-offs than handing the query to
    a waiting thread (benchmarks/suppression_overhead.py). Daemon: a thread stuck on a black-holed
    connection never holds up the process's exit, and the breaker sends it at most one more job per
    `retry_s`. Fork-aware: a forked gunicorn worker inherits no threads, so it starts its own.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], Any]) -> tuple[threading.Event, list[Any]]:
        """Run `job` on a pool thread; the event is set once the list holds its result or exception."""
        result: list[Any] = []
        done = threading.Event()
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
            if self._idle == 0 and self._threads < self.size:
                self._threads += 1
                threading.Thread(
                    target=self._work, args=(self._jobs,), name="suppression-lookup", daemon=True
                ).start()
            self._jobs.put((job, result, done))
        return done, result

    def _work(self, jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]]) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job, result, done = jobs.get()
            with self._lock:
                self._idle -= 1
            try:
                result.append(job())
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who decides
                result.append(exc)
            finally:
                done.set()
