"""The feedback round trip in the real sandbox: override with a reason, dismiss, and what comes back.

The reason is chosen from what the card offers and what the knowledge files let silence the rule
(`suppression:` in the service's cards.yaml), so the check survives a rewrite of codes and wording.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from selenium.webdriver.common.by import By

from cds.config import Settings
from demo.browser import ServiceLog, wait_until
from demo.report import Check
from demo.run import ROOT
from demo.sandbox_flows import PV, TIMEOUT, summaries
from hooks.app import services

if TYPE_CHECKING:
    from demo.sandbox_flows import SandboxRun

RULE = "mri"  # the card the issue names: overridden, it must not come back for the patient


def silencing_reason(card: dict[str, Any]) -> dict[str, str]:
    policy = next(s for s in services(Settings()) if s.id == PV).suppress_after
    return next(r for r in card.get("overrideReasons", []) if r["code"] in policy)


def report_json(run: SandboxRun) -> list[dict[str, Any]]:
    """`cds report --json` on the demo's own database, as an operator would run it."""
    env = {**os.environ, "CDS_DATA_DIR": str(run.stack.log_path.parent), "CDS_LOG_LEVEL": "WARNING"}
    env.pop("CDS_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "hooks.app", "report", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def round_trip(run: SandboxRun) -> list[Check]:
    story = run.stack.stories[0]
    run.open(run.link(story))
    body = run.calls((PV,))[PV].response_json()
    cards = run.rendered(summaries(body))
    target = next(c for c in body["cards"] if c["source"]["topic"]["code"] == RULE)
    reason = silencing_reason(target)
    dom = next(c for c in cards if c.summary == " ".join(target["summary"].split()))

    # 1. Override with a reason, through the sandbox's own menu.
    run.net.clear()
    dom.element.find_element(By.CSS_SELECTOR, "button[aria-label='select dismiss reason']").click()
    wanted = f"Override: {' '.join(reason['display'].split())}"

    def menu() -> tuple[list[Any], list[str]] | None:
        items = run.driver.find_elements(By.CSS_SELECTOR, "li[role='menuitem']")
        labels = [" ".join((i.get_attribute("textContent") or "").split()) for i in items]
        return (items, labels) if wanted in labels else None

    items, labels = wait_until(menu, 10, f"the override menu item {wanted!r}")
    items[labels.index(wanted)].click()
    [override] = run.net.wait(lambda e: e.url.endswith("/feedback"), TIMEOUT, "override feedback")
    sent = override.json()["feedback"][0]
    reply = override.response_json()
    ok = override.status == 200 and reply == {"received": 1, "stored": 1, "unknownCards": 0}
    ok = ok and "display" not in sent["overrideReason"]["reason"]
    checks = [
        Check(
            "feedback: override with a reason, as the sandbox sends it",
            ok,
            f"the menu offers {labels}; choosing '{reason['display']}' posts reason "
            f"{sent['overrideReason']['reason']} (no display, no userComment): {override.status} {reply}",
            None,
            ["POST " + override.url, json.dumps(override.json(), indent=2), "-> " + json.dumps(reply)],
        )
    ]

    # 2. Plain "Dismiss" on another card: overridden without a reason.
    other = next(c for c in run.dom_cards() if c.summary != dom.summary)
    run.net.clear()
    next(b for b in other.element.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Dismiss").click()
    [dismiss] = run.net.wait(lambda e: e.url.endswith("/feedback"), TIMEOUT, "dismiss feedback")
    item = dismiss.json()["feedback"][0]
    checks.append(
        Check(
            "feedback: Dismiss without a reason",
            dismiss.status == 200 and item["outcome"] == "overridden" and "overrideReason" not in item,
            f"'Dismiss' posts outcome '{item['outcome']}' with no overrideReason: {dismiss.status}",
            None,
            [json.dumps(dismiss.json(), indent=2)],
        )
    )

    # 3. The next visit: the overridden rule stays silent, the dismissed one (no reason) comes back.
    log = ServiceLog(run.stack.log_path)
    log.mark()
    run.open(run.link(story))
    again = run.calls((PV,))[PV].response_json()
    run.rendered(summaries(again))
    [call] = log.wait(
        lambda e: e.get("event") == "hook.call" and e.get("service") == PV, TIMEOUT, "hook.call"
    )
    rules = [c["source"]["topic"]["code"] for c in again["cards"]]
    checks.append(
        Check(
            f"the overridden {RULE} card does not come back",
            RULE not in rules and call.get("suppressed") == [RULE],
            f"reopening story 1: cards {rules}; the service log says suppressed {call.get('suppressed')}; "
            "the card dismissed without a reason is shown again",
            run.shot("sandbox-01-after-override.png"),
        )
    )

    # 4. What the committee sees: cds report and /analytics (the suppressed card is audited off the
    # request path, so the report is read once it has landed).
    row = wait_until(
        lambda: next((r for r in report_json(run) if r["rule"] == RULE and r["suppressed"]), None),
        TIMEOUT,
        "the suppressed card in cds report",
    )
    report = report_json(run)
    run.driver.get(f"{run.stack.service_url}/analytics")
    page = run.body_text()
    checks.append(
        Check(
            "feedback: visible in cds report and /analytics",
            row["override_reasons"].get(reason["code"]) == 1 and reason["display"] in page,
            f"`cds report`: {RULE} shown {row['shown']}, overridden {row['overridden']}, suppressed "
            f"{row['suppressed']}, reasons {row['override_reasons']}; /analytics lists '{reason['display']}' "
            "and counts the suppressed card",
            run.shot("analytics-after-sandbox-feedback.png"),
            [json.dumps(report, indent=2)],
        )
    )
    return checks
