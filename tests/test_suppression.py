"""Suppression: feedback silences a rule for a patient for a while, on every worker; red flags never.

Every test runs on SQLite and on the real PostgreSQL; "two workers" are two apps sharing one database
(no state is shared in-process between them).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from cds.app import create_app
from cds.cards import Action, Card, Coding, Source, Suggestion
from cds.registry import Rule, Service
from cds.store import Store
from cds.store.core import utcnow
from cds.store.schema import suppressed_cards
from cds.suppression import DaemonPool, Suppressor, chart_shows
from cds.web import get_store, state
from hooks.app import create_app as clinical_app
from hooks.app import main as hooks_main
from hooks.common.suppression import SuppressionSpec, suppression_settings
from tests.builders import FIXTURES, post, pv_request, searchset, settings
from tests.dbsupport import db_url, pg_url  # noqa: F401  (fixtures)

SCENARIOS = FIXTURES / "scenarios"
PV = "l5-radiculopathy-patient-view"
REASONS = "urn:spine-cds:override-reason"
CLOCK = datetime(2026, 1, 15, tzinfo=UTC)  # the scenarios' "now" (the rules' clock, not suppression's)


def scenario(name: str) -> dict[str, Any]:
    return json.loads((SCENARIOS / name).read_text(encoding="utf-8"))


@pytest.fixture
def workers(db_url) -> Iterator[list[Any]]:  # noqa: F811
    """Two app instances (two workers, or two pods) on one database."""
    apps = [clinical_app(settings(database_url=db_url, clock=CLOCK)) for _ in range(2)]
    yield apps
    for app in apps:
        get_store(app).close()


def cards_by_rule(app, body: dict[str, Any], service: str = PV) -> dict[str, dict[str, Any]]:
    r = post(app.test_client(), service, {**body, "hookInstance": body["hookInstance"]})
    assert r.status_code == 200, r.get_json()
    return {c["source"]["topic"]["code"]: c for c in r.get_json()["cards"]}


def override(app, card: dict[str, Any], code: str, service: str = PV, system: str = REASONS) -> None:
    """As the CDS Hooks sandbox sends it: system and code, no display."""
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": {"system": system, "code": code}},
        "outcomeTimestamp": utcnow().isoformat() + "Z",
    }
    r = app.test_client().post(f"/cds-services/{service}/feedback", json={"feedback": [item]})
    assert r.status_code == 200, r.get_json()


def accept(app, card: dict[str, Any], suggestion: dict[str, Any], service: str = PV) -> None:
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion["uuid"]}],
        "outcomeTimestamp": utcnow().isoformat() + "Z",
    }
    r = app.test_client().post(f"/cds-services/{service}/feedback", json={"feedback": [item]})
    assert r.status_code == 200, r.get_json()


def settle(*apps: Any) -> None:
    for app in apps:
        get_store(app).flush()


def test_an_overridden_mri_card_stays_away_for_that_patient_on_every_worker(workers, capsys):
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    first = cards_by_rule(a, body)
    assert set(first) == {"mri", "conservative-care"}
    assert [r["code"] for r in first["mri"]["overrideReasons"]][:3] == [
        "already-addressed",
        "patient-declined",
        "clinical-judgment",
    ]
    settle(a)
    override(a, first["mri"], "already-addressed")
    for worker in (b, a, b):  # the other worker first: nothing in-process carries it
        assert set(cards_by_rule(worker, body)) == {"conservative-care"}
    # Another patient with the same rule is not affected.
    assert "mri" in cards_by_rule(b, scenario("07-progressive-foot-drop.json"))
    calls = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"hook.call"' in x]
    assert [c["suppressed"] for c in calls[1:4]] == [["mri"]] * 3
    assert {c["suppression"] for c in calls[1:4]} == {"checked"}


def test_feedback_from_one_ehr_never_silences_another_ehrs_patient_with_the_same_id(workers):
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    mine = {**body, "fhirServer": "https://ehr-a.example.org/fhir"}
    theirs = {**body, "fhirServer": "https://ehr-b.example.org/fhir"}  # same patient id, other EHR
    override(a, cards_by_rule(a, mine)["mri"], "already-addressed")
    settle(a)
    assert "mri" not in cards_by_rule(b, mine)
    assert "mri" in cards_by_rule(b, theirs)


def test_the_period_comes_from_the_knowledge_file_and_then_the_card_returns(workers):
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    override(a, cards_by_rule(a, body)["mri"], "patient-declined")
    settle(a)
    assert "mri" not in cards_by_rule(b, body)
    suppressor = state(b).engine.suppressor
    suppressor.clock = lambda: utcnow() + timedelta(days=29, hours=23)
    assert "mri" not in cards_by_rule(b, body)
    suppressor.clock = lambda: utcnow() + timedelta(days=30, minutes=1)
    assert "mri" in cards_by_rule(b, body)


@pytest.mark.parametrize(
    "code,system",
    [
        ("emg-disputed", REASONS),  # offered, but not a reason that silences (cards.yaml)
        ("already-addressed", "urn:ehr:own-reasons"),  # the EHR's own reason list, not the card's
    ],
    ids=["reason-without-period", "client-reason"],
)
def test_other_reasons_and_dismissal_silence_nothing(workers, code, system):
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    cards = cards_by_rule(a, body)
    override(a, cards["mri"], code, system=system)
    dismissed = {"card": cards["conservative-care"]["uuid"], "outcome": "overridden"}
    dismissed["outcomeTimestamp"] = utcnow().isoformat() + "Z"
    assert (
        a.test_client().post(f"/cds-services/{PV}/feedback", json={"feedback": [dismissed]}).status_code
        == 200
    )
    settle(a)
    assert set(cards_by_rule(b, body)) == {"mri", "conservative-care"}


def test_a_red_flags_card_always_comes_back(workers):
    a, b = workers
    body = scenario("05-red-flags.json")
    first = cards_by_rule(a, body)
    assert list(first) == ["red-flags"] and first["red-flags"]["indicator"] == "critical"
    for code in ("already-addressed", "patient-declined", "clinical-judgment"):
        override(a, cards_by_rule(a, body)["red-flags"], code)
    settle(a)
    assert list(cards_by_rule(b, body)) == ["red-flags"]


def test_an_accepted_order_suggestion_silences_the_card(workers):
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    mri = cards_by_rule(a, body)["mri"]
    order_mri = next(s for s in mri["suggestions"] if s.get("isRecommended"))
    accept(a, mri, order_mri)
    settle(a)
    assert set(cards_by_rule(b, body)) == {"conservative-care"}


def test_suppressed_cards_are_counted_in_the_report_and_analytics(workers, db_url, monkeypatch, capsys):  # noqa: F811
    a, b = workers
    body = scenario("01-l5-no-mri.json")
    override(a, cards_by_rule(a, body)["mri"], "clinical-judgment")
    settle(a)
    for _ in range(2):
        cards_by_rule(b, body)
    settle(a, b)
    with get_store(b).read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(suppressed_cards))]
    assert [(r["service"], r["rule"], r["cause"]) for r in rows] == [
        (PV, "mri", "overridden:clinical-judgment")
    ] * 2
    assert rows[0]["patient_hash"] and "pt-s01" not in rows[0]["patient_hash"]
    page = a.test_client().get("/analytics").get_data(as_text=True)
    assert 'id="total-suppressed">2<' in page and 'data-rule="mri"' in page
    assert 'data-suppressed="2"' in page
    monkeypatch.setenv("CDS_DATABASE_URL", db_url)
    capsys.readouterr()
    assert hooks_main(["report", "--json"]) == 0
    report = {r["rule"]: r for r in json.loads(capsys.readouterr().out)}
    assert (report["mri"]["shown"], report["mri"]["overridden"], report["mri"]["suppressed"]) == (1, 1, 2)
    assert report["conservative-care"]["suppressed"] == 0
    assert hooks_main(["report"]) == 0
    assert "suppressed" in capsys.readouterr().out


# -- accepted suggestions: "until the chart shows the order" (engine semantics, with a test service) -----

ORDER = {"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}


def ordering_card(_inp: Any) -> list[Card]:
    """Always fires: one suggestion creates an order, one only edits the draft in hand."""
    create = Action(
        type="create",
        description="order it",
        resource={"resourceType": "ServiceRequest", "status": "draft", "code": {"coding": [ORDER]}},
    )
    update = Action(
        type="update",
        description="fix the draft",
        resource={"resourceType": "ServiceRequest", "id": "draft-1", "status": "draft"},
    )
    return [
        Card(
            summary="order something",
            indicator="warning",
            source=Source(label="test", topic=Coding(system="urn:spine-cds:rule", code="orders")),
            suggestions=[
                Suggestion(label="order", actions=[create]),
                Suggestion(label="edit", actions=[update]),
            ],
            selectionBehavior="at-most-one",
            overrideReasons=[Coding(system=REASONS, code="declined", display="Patient declines")],
        )
    ]


def ordering_service(**suppression: Any) -> Service:
    return Service(
        id="test-orders",
        hook="patient-view",
        title="Orders",
        description="d",
        handler=ordering_card,
        prefetch={"orders": "ServiceRequest?patient={{context.patientId}}"},
        rules=(Rule("orders", ("warning",)),),
        **{"suppress_after": {"declined": 7}, "suppress_accepted_days": 30, **suppression},
    )


@pytest.fixture
def orders_app(db_url) -> Iterator[Any]:  # noqa: F811
    app = create_app(settings(database_url=db_url), services=[ordering_service()])
    yield app
    get_store(app).close()


def call_orders(app, *chart: dict[str, Any]) -> list[dict[str, Any]]:
    r = post(app.test_client(), "test-orders", pv_request({"orders": searchset(*chart)}))
    assert r.status_code == 200
    return r.get_json()["cards"]


def placed(status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "mri-1",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [ORDER]},
    }


def test_accepted_order_silences_until_the_chart_shows_the_order(orders_app):
    [card] = call_orders(orders_app)
    accept(orders_app, card, card["suggestions"][0], service="test-orders")
    assert call_orders(orders_app) == []  # not ordered yet: silent
    assert call_orders(orders_app, placed("entered-in-error")) == []  # recorded in error: never placed
    assert len(call_orders(orders_app, placed("active"))) == 1  # the chart shows it: the rule judges again
    assert len(call_orders(orders_app, placed("revoked"))) == 1  # placed, then revoked: still judged


def test_a_suggestion_that_orders_nothing_silences_nothing(orders_app):
    [card] = call_orders(orders_app)
    accept(orders_app, card, card["suggestions"][1], service="test-orders")
    assert len(call_orders(orders_app)) == 1


def test_never_suppress_and_critical_cards_always_show(db_url):  # noqa: F811
    app = create_app(
        settings(database_url=db_url), services=[ordering_service(never_suppress=frozenset({"orders"}))]
    )
    try:
        [card] = call_orders(app)
        override(app, card, "declined", service="test-orders")
        assert len(call_orders(app)) == 1
    finally:
        get_store(app).close()


def test_chart_shows_matches_type_system_and_code():
    mri = [{"type": "ServiceRequest", **ORDER}]
    assert chart_shows(mri, [placed()])
    assert not chart_shows(mri, [{**placed(), "resourceType": "Procedure"}])
    assert not chart_shows(mri, [{**placed(), "code": {"coding": [{**ORDER, "system": "urn:other"}]}}])
    assert not chart_shows(mri, [{**placed(), "code": "72148"}])  # malformed: ignored, not an error
    assert not chart_shows([], [placed()])


# -- the hook path never hangs on the database ------------------------------------------------------


class BlackHole:
    """A TCP port that completes the handshake (kernel backlog) and then never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def test_a_hanging_database_shows_the_cards_after_the_timeout_and_is_then_left_alone(db_url, capsys):  # noqa: F811
    app = create_app(settings(database_url=db_url), services=[ordering_service()])
    hole = BlackHole()
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{hole.port}/none", migrate=False)
    engine = state(app).engine
    engine.suppressor = Suppressor(down, state(app).registry, timeout_s=0.3, retry_s=60)
    try:
        calls = []
        for _ in range(3):
            started = time.monotonic()
            cards = call_orders(app)
            calls.append(time.monotonic() - started)
            assert len(cards) == 1
        # A hang check, not a speed claim: the black hole would hold the call forever.
        assert calls[0] < 10
        out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        unavailable = [e for e in out if e["event"] == "suppression.unavailable"]
        assert [e["reason"] for e in unavailable] == ["timeout"], "the breaker asks once per retry window"
        assert [e["suppression"] for e in out if e["event"] == "hook.call"] == ["unavailable"] * 3
    finally:
        hole.close()
        down.close(timeout=1)
        get_store(app).close()


def test_a_refused_connection_fails_open_too(db_url, capsys):  # noqa: F811
    app = create_app(settings(database_url=db_url), services=[ordering_service()])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none", migrate=False)
    state(app).engine.suppressor = Suppressor(down, state(app).registry, timeout_s=5, retry_s=60)
    try:
        assert len(call_orders(app)) == 1
        [event] = [
            json.loads(x) for x in capsys.readouterr().out.splitlines() if "suppression.unavailable" in x
        ]
        assert event["reason"] == "OperationalError"
    finally:
        down.close(timeout=1)
        get_store(app).close()


# -- declarations ------------------------------------------------------------------------------------


def test_service_declarations_refuse_bad_suppression_settings():
    with pytest.raises(ValueError, match="whole days"):
        ordering_service(suppress_after={"declined": -1})
    with pytest.raises(ValueError, match="undeclared rules"):
        ordering_service(never_suppress=frozenset({"no-such-rule"}))


def test_cards_yaml_suppression_names_only_reasons_the_cards_offer():
    reasons = {"default": [SimpleNamespace(code="a")], "link": [SimpleNamespace(code="b")]}
    cards = SimpleNamespace(override_reasons=reasons, suppression=SuppressionSpec(override_days={"b": 3}))
    assert suppression_settings(cards, "x.yaml") == {
        "suppress_after": {"b": 3},
        "suppress_accepted_days": None,
    }
    renamed = SimpleNamespace(
        override_reasons=reasons, suppression=SuppressionSpec(override_days={"renamed": 3})
    )
    with pytest.raises(ValueError, match="do not offer.*'renamed'"):
        suppression_settings(renamed, "x.yaml")
    with pytest.raises(ValidationError):
        SuppressionSpec(override_dayz={})  # a typo in the site's file stops start-up
    with pytest.raises(ValidationError):
        SuppressionSpec(override_days={"a": -1})


def test_shipped_defaults_are_documented_30_days_and_red_flags_never():
    from cds.config import Settings
    from hooks.app import services

    declared = {s.id: s for s in services(Settings())}
    for sid in ("l5-radiculopathy-patient-view", "l5-radiculopathy-order-select"):
        assert dict(declared[sid].suppress_after) == {
            "already-addressed": 30,
            "clinical-judgment": 30,
            "patient-declined": 30,
        }
        assert declared[sid].never_suppress == frozenset({"red-flags"})
    for s in declared.values():
        assert s.suppress_accepted_days == 30


def test_the_lookup_threads_start_again_in_a_forked_worker():
    """gunicorn forks its workers after the app is built: a child inherits the pool, not its threads."""
    pool = DaemonPool(size=1)
    done, result = pool.submit(lambda: "parent")
    assert done.wait(5) and result == ["parent"]
    pid = os.fork()
    if pid == 0:  # the child: its lookups must still run
        done, result = pool.submit(lambda: "child")
        os._exit(0 if done.wait(5) and result == ["child"] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
