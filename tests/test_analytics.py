"""GET /analytics: numbers from the store, loopback-only without auth, JWT-protected with it, no scripts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cds.analytics import build_charts, is_loopback
from cds.app import create_app
from cds.store.core import utcnow
from cds.web import get_store
from tests.builders import make_test_services, settings
from tests.dbsupport import accepted, card, overridden


@pytest.fixture
def app(db_url):
    application = create_app(settings(database_url=db_url), services=make_test_services())
    yield application
    get_store(application).close()


def seed(app) -> None:
    """rule-a: 4 cards yesterday, 2 accepted, 1 overridden; rule-b: 2 cards today, both overridden."""
    store = get_store(app)
    today = utcnow().replace(hour=9)
    a = [card("rule-a") for _ in range(4)]
    b = [card("rule-b") for _ in range(2)]
    store.record_served("svc-1", "h1", None, a, at=today - timedelta(days=1))
    store.record_served("svc-2", "h2", None, b, at=today)
    store.flush()
    store.save_feedback(
        "svc-1",
        [accepted(a[0].uuid), accepted(a[1].uuid), overridden(a[2].uuid, code="not-indicated")],
    )
    store.save_feedback("svc-2", [overridden(b[0].uuid, code="<script>x</script>"), overridden(b[1].uuid)])


def attrs(html: str, cls: str) -> list[dict[str, str]]:
    found = []
    for tag in re.findall(rf'<[a-z]+ class="{cls}[^"]*"[^>]*>', html, re.S):
        found.append(dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag)))
    return found


def test_page_shows_the_seeded_numbers(app, client):
    seed(app)
    r = client.get("/analytics")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp, "no script may run on this page"
    assert "<script" not in html and "&lt;script&gt;x&lt;/script&gt;" in html, "client text must be escaped"
    rows = {row["rule"]: row for row in attrs(html, "rule-row")}
    assert rows["rule-a"] == {
        "service": "svc-1",
        "rule": "rule-a",
        "shown": "4",
        "accepted": "2",
        "overridden": "1",
        "acceptance-rate": "0.5000",
        "override-rate": "0.2500",
        "suppressed": "0",
    }
    assert rows["rule-b"]["override-rate"] == "1.0000"
    assert re.search(r'id="total-shown">6<', html) and re.search(r'id="total-feedback">5<', html)
    points = attrs(html, "point")
    acc_a = [p for p in points if p["rule"] == "rule-a" and p["kind"] == "acceptance"]
    assert [(p["rate"], p["count"], p["shown"]) for p in acc_a] == [("0.5000", "2", "4")]
    assert {p["day"] for p in points} == {
        (utcnow() - timedelta(days=1)).date().isoformat(),
        utcnow().date().isoformat(),
    }
    assert [b["shown"] for b in attrs(html, "bar")] == ["4", "2"]
    reasons = {r["code"]: r["count"] for r in attrs(html, "reason-row")}
    assert reasons == {"not-indicated": "2", "&lt;script&gt;x&lt;/script&gt;": "1"}


def test_empty_store_and_since_filter(app, client):
    html = client.get("/analytics").get_data(as_text=True)
    assert 'id="no-data"' in html and 'id="total-shown">0<' in html
    seed(app)
    future = client.get("/analytics?since=2999-01-01").get_data(as_text=True)
    assert 'id="no-data"' in future
    for since in ("last-week", "0001-01-01T00:00:00%2B14:00"):
        bad = client.get(f"/analytics?since={since}")
        assert bad.status_code == 400 and bad.get_json()["error"] == "invalid-parameter"


@pytest.mark.parametrize(
    "remote,headers,status",
    [
        ("127.0.0.1", {}, 200),
        ("127.8.9.10", {}, 200),
        ("::1", {}, 200),
        ("10.1.2.3", {}, 403),
        ("192.168.0.5", {}, 403),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]"'}, 403),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, ::1"}, 200),
    ],
)
def test_loopback_only_when_auth_is_off(app, remote, headers, status):
    r = app.test_client().get("/analytics", environ_base={"REMOTE_ADDR": remote}, headers=headers)
    assert r.status_code == status
    if status == 403:
        assert r.get_json() == {
            "error": "forbidden",
            "message": "analytics is only served to loopback clients when auth is off",
            "status": 403,
        }


def test_is_loopback_edge_cases():
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback(None) and not is_loopback("unknown") and not is_loopback("")


def test_with_auth_required_a_remote_client_needs_a_token(tmp_path, db_url):
    from tests.test_auth import BASE, token, trusted_file

    app = create_app(
        settings(
            auth="required", trusted_clients=trusted_file(tmp_path), public_base_url=BASE, database_url=db_url
        ),
        services=make_test_services(),
    )
    try:
        client = app.test_client()
        remote = {"REMOTE_ADDR": "10.1.2.3"}
        assert client.get("/analytics", environ_base=remote).status_code == 401
        ok = client.get(
            "/analytics", environ_base=remote, headers={"Authorization": f"Bearer {token('/analytics')}"}
        )
        assert ok.status_code == 200 and 'id="rule-table"' in ok.get_data(as_text=True)
        path = "/cds-services/test-patient-view/feedback"
        body = {"feedback": [accepted("c1")]}
        assert client.post(path, json=body).status_code == 401
        fb = client.post(path, json=body, headers={"Authorization": f"Bearer {token(path)}"})
        assert fb.status_code == 200 and fb.get_json()["stored"] == 1
    finally:
        get_store(app).close()


def test_chart_geometry():
    rows = [
        {"rule": "r", "day": "2026-01-01", "shown": 4, "accepted": 1, "overridden": 3},
        {"rule": "r", "day": "2026-01-03", "shown": 2, "accepted": 2, "overridden": 0},
    ]
    chart = build_charts(rows)
    [series] = chart["series"]
    assert len(chart["days"]) == 3, "the time axis is continuous across days without cards"
    first, last = series.acceptance
    assert first["x"] < last["x"] and first["y"] > last["y"], "25% is drawn below 100%"
    assert series.override[0]["rate"] == 0.75 and build_charts([])["series"] == []
