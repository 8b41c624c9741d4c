"""A real headless Chromium renders /analytics from a live server and shows the seeded numbers.

Debian `chromium` + `chromium-driver` (installed by .ci/run), driven by Selenium. Under CI=true a missing
browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from cds.app import create_app
from cds.store.core import utcnow
from cds.web import get_store
from tests.builders import make_test_services, settings
from tests.dbsupport import IN_CI, accepted, card, overridden

CHROMIUM = os.environ.get("CDS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CDS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path) -> Iterator[object]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        message = f"headless browser test needs {missing} (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message + " (CI=true: this test must run)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def live_url(db_url) -> Iterator[str]:
    app = create_app(settings(database_url=db_url), services=make_test_services())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seed(app)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        get_store(app).close()


def seed(app) -> None:
    """rule-a: 5 cards two days ago (4 accepted) and 5 today (1 accepted, 2 overridden); rule-b: 2 cards."""
    store = get_store(app)
    today = utcnow().replace(hour=8)
    a_old = [card("rule-a") for _ in range(5)]
    a_new = [card("rule-a") for _ in range(5)]
    b = [card("rule-b") for _ in range(2)]
    store.record_served("svc-1", "h1", None, a_old, at=today - timedelta(days=2))
    store.record_served("svc-1", "h2", None, a_new, at=today)
    store.record_served("svc-1", "h3", None, b, at=today)
    store.flush()
    items = [accepted(c.uuid) for c in a_old[:4]] + [accepted(a_new[0].uuid)]
    items += [overridden(a_new[1].uuid, code="already-done"), overridden(a_new[2].uuid, code="already-done")]
    items += [overridden(b[0].uuid, code="not-indicated")]
    store.save_feedback("svc-1", items)


def test_browser_renders_chart_and_table(browser, live_url):
    browser.get(live_url + "/analytics")
    assert browser.title.startswith("spine-cds")
    assert browser.find_element(By.ID, "total-shown").text == "12"
    assert browser.find_element(By.ID, "total-feedback").text == "8"

    chart = browser.find_element(By.ID, "rate-chart")
    assert chart.is_displayed() and chart.size["width"] > 300 and chart.size["height"] > 100
    assert chart.get_attribute("data-days") == "3" and chart.get_attribute("data-series") == "2"
    series = {g.get_attribute("data-rule"): g for g in chart.find_elements(By.CSS_SELECTOR, "g.series")}
    assert set(series) == {"rule-a", "rule-b"}
    acc = series["rule-a"].find_elements(By.CSS_SELECTOR, "circle.point.acceptance")
    assert [(p.get_attribute("data-day"), p.get_attribute("data-rate")) for p in acc] == [
        ((utcnow() - timedelta(days=2)).date().isoformat(), "0.8000"),
        (utcnow().date().isoformat(), "0.2000"),
    ]
    # The browser really laid the line out: it has length, and 80% is drawn above 20%.
    line = series["rule-a"].find_element(By.CSS_SELECTOR, "polyline.acceptance")
    assert browser.execute_script("return arguments[0].getTotalLength()", line) > 100
    assert acc[0].rect["y"] < acc[1].rect["y"]
    over = series["rule-a"].find_elements(By.CSS_SELECTOR, "circle.point.override")
    assert [p.get_attribute("data-rate") for p in over] == ["0.0000", "0.4000"]
    bars = browser.find_elements(By.CSS_SELECTOR, "#volume-chart rect.bar")
    assert [b.get_attribute("data-shown") for b in bars] == ["5", "7"] and bars[1].rect["height"] > 0

    rows = browser.find_elements(By.CSS_SELECTOR, "#rule-table tr.rule-row")
    cells = {
        r.get_attribute("data-rule"): [td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows
    }
    assert cells["rule-a"][:7] == ["svc-1", "rule-a", "10", "5", "2", "50.0%", "20.0%"]
    assert cells["rule-a"][7:] == ["0", "Reason already-done (2)"]  # suppressed, top reasons
    assert cells["rule-b"][2:7] == ["2", "0", "1", "0.0%", "50.0%"]
    reasons = browser.find_elements(By.CSS_SELECTOR, "#reason-table tr.reason-row")
    assert [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in reasons] == [
        ["Reason already-done", "already-done", "2"],
        ["Reason not-indicated", "not-indicated", "1"],
    ]
    assert browser.execute_script("return document.scripts.length") == 0
