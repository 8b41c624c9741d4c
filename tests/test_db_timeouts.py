"""A PostgreSQL that accepts and never answers no longer stops the service (issue 12, item 3).

The real PostgreSQL at 127.0.0.1:5432 is reached through a TCP proxy these tests start (`tests.tcpproxy`);
`stall()` makes it hang the way a stopped or wedged server does, `resume()` brings it back. Before the
timeouts, every request that touched the database waited forever, and with sync workers all busy waiting,
hook calls too. Deadlines here are short (1 s) to keep the tests quick; production defaults are in
README "Production". The `within` guards only tell "answered" from "hung": the deadlines are 1-2 s, the
guards several times that.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from cds.app import create_app
from cds.store import db
from cds.store.schema import feedback, served_cards
from cds.web import get_store
from tests.builders import make_test_services, pv_request, searchset, settings
from tests.dbsupport import accepted, reset
from tests.tcpproxy import TcpProxy

PREFETCH = {
    "patient": {"resourceType": "Patient", "id": "p1"},
    "conditions": searchset(),
    "observations": None,
}
TIMEOUTS = {
    "db_statement_timeout_s": 1.0,
    "db_ready_timeout_s": 1.0,
    "db_pool_timeout_s": 0.5,
    "db_connect_timeout_s": 2,
    "db_retry_after_s": 1,
}


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    reset(pg_url)
    with TcpProxy(sa.engine.make_url(pg_url).port or 5432) as p:
        yield p


@pytest.fixture
def app(pg_url: str, proxy: TcpProxy):
    url = sa.engine.make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
    application = create_app(settings(database_url=url, **TIMEOUTS), services=make_test_services())
    yield application
    proxy.resume()
    get_store(application).close(timeout=10)


def within(seconds: float, call: Any) -> tuple[Any, float]:
    """(result, elapsed) of `call()`, failing if it has not returned after `seconds` (a hang)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # reported below
            out["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer after {seconds} s: the call hangs"
    if "error" in out:
        raise out["error"]
    return out["value"], time.monotonic() - started


def _count(pg_url: str, table: sa.Table) -> int:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def _card(client: Any) -> str:
    response = client.post("/cds-services/test-patient-view", json=pv_request(PREFETCH))
    assert response.status_code == 200
    return response.get_json()["cards"][0]["uuid"]


def _feedback(client: Any, card: str) -> Any:
    return client.post("/cds-services/test-patient-view/feedback", json={"feedback": [accepted(card)]})


def test_feedback_answers_503_with_retry_after_while_the_database_hangs_and_recovers(app, proxy, pg_url):
    client = app.test_client()
    card = _card(client)
    assert _feedback(client, card).status_code == 200  # a pooled connection now exists
    proxy.stall()
    first, took = within(10, lambda: _feedback(client, card + "0"))
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert first.get_json()["error"] == "unavailable"
    print(f"hung database: feedback 503 after {took:.2f} s")
    again, took = within(10, lambda: _feedback(client, card + "1"))
    assert again.status_code == 503 and took < 0.5  # known down: answered at once, no worker held
    proxy.resume()
    time.sleep(1.1)  # Retry-After
    back, _ = within(10, lambda: _feedback(client, card + "2"))
    assert back.status_code == 200  # no restart
    assert _count(pg_url, feedback) == 2


def test_readyz_answers_503_within_the_probe_timeout_then_200(app, proxy):
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    proxy.stall()
    proxy.cut()  # no pooled connection survives: the check must connect (libpq: 2 s at least)
    for _ in range(2):  # the second probe finds the first check still connecting
        response, took = within(10, lambda: client.get("/readyz"))
        assert response.status_code == 503 and response.get_json()["checks"]["database"] == "error"
        assert took < 3.0, f"readiness probe timeout is 3 s; /readyz took {took:.2f} s"
    proxy.resume()
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "/readyz never recovered"
        time.sleep(0.2)


def test_hook_calls_answer_while_the_database_hangs_and_their_audit_lands_after(app, proxy, pg_url):
    client = app.test_client()
    _card(client)
    get_store(app).flush(10)
    proxy.stall()
    served = 1
    for _ in range(10):
        response, took = within(
            5, lambda: client.post("/cds-services/test-patient-view", json=pv_request(PREFETCH))
        )
        assert response.status_code == 200
        served += len(response.get_json()["cards"])
    proxy.resume()
    assert get_store(app).flush(20), "the queued audit never landed"
    assert _count(pg_url, served_cards) == served  # nothing lost, no restart


def test_full_audit_queue_while_the_database_hangs_never_holds_a_hook_call(pg_url, proxy, capsys):
    """Past the queue's bound, with the database known down, rows are logged as lost, not waited for."""
    url = sa.engine.make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
    app = create_app(settings(database_url=url, audit_queue_max=2, **TIMEOUTS), services=make_test_services())
    client = app.test_client()

    def call() -> Any:
        return client.post("/cds-services/test-patient-view", json=pv_request(PREFETCH))

    try:
        proxy.stall()
        assert call().status_code == 200
        time.sleep(0.3)  # the writer now holds that row, waiting on the hung database
        times = []
        for _ in range(12):
            response, took = within(10, call)
            assert response.status_code == 200
            times.append(took)
        # One call, at most, waits once: the inline write that finds the database down (1 s + grace).
        assert sum(t > 0.5 for t in times) <= 1, times
        assert max(times) < 3.0, times
        assert get_store(app).writer.lost >= 8
        assert '"event":"audit.lost"' in capsys.readouterr().out
    finally:
        proxy.resume()
        get_store(app).close(timeout=10)


def test_pool_exhausted_feedback_answers_503_after_the_pool_timeout(app, proxy):
    client = app.test_client()
    card = _card(client)
    store = get_store(app)
    held = [store.engine.connect() for _ in range(15)]  # pool_size 5 + max_overflow 10
    try:
        response, took = within(10, lambda: _feedback(client, card))
        assert response.status_code == 503 and took < 3.0
    finally:
        for conn in held:
            conn.close()
    time.sleep(1.1)
    assert _feedback(client, card).status_code == 200


def test_a_lock_wait_is_cancelled_by_the_server_and_the_connection_reused(app, proxy, pg_url):
    """A live but blocked server (the audit lock held elsewhere): the server's own statement/lock timeout
    ends the wait, and the pooled connection stays usable."""
    client = app.test_client()
    card = _card(client)
    get_store(app).flush(10)
    blocker = sa.create_engine(pg_url)
    try:
        with blocker.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": db.AUDIT_LOCK})
            response, took = within(10, lambda: _feedback(client, card))
            assert response.status_code == 503 and took < 3.0
    finally:
        blocker.dispose()
    time.sleep(1.1)
    assert _feedback(client, card).status_code == 200
    assert get_store(app).engine.pool.checkedin() >= 1


def test_cards_still_queued_in_another_worker_count_as_known(app, proxy, pg_url):
    """Issue 12, item 10: worker A's audit rows are stuck in its queue (its database path hangs) while
    worker B, sharing the database and CDS_HASH_KEY, receives the feedback: the cards are known."""
    worker_b = create_app(settings(database_url=pg_url, **TIMEOUTS), services=make_test_services())
    try:
        client_a, client_b = app.test_client(), worker_b.test_client()
        proxy.stall()
        cards = [_card(client_a) for _ in range(5)]
        never_served = str(uuid.uuid4())
        items = [accepted(c) for c in [*cards, never_served]]
        response = client_b.post("/cds-services/test-patient-view/feedback", json={"feedback": items})
        assert response.status_code == 200
        assert response.get_json() == {"received": 6, "stored": 6, "unknownCards": 1}
        assert _count(pg_url, served_cards) == 0  # really still queued in worker A
        proxy.resume()
        assert get_store(app).flush(20)
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            unknown = conn.execute(sa.select(feedback.c.card_uuid).where(feedback.c.unknown_card)).scalars()
            assert list(unknown) == [never_served]
        engine.dispose()
    finally:
        get_store(worker_b).close(timeout=10)
