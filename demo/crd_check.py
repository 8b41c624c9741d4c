"""The Da Vinci CRD Request Generator against `make demo`: the EMG/NCS order stories in a second client.

The generator (HL7-DaVinci/crd-request-generator; `npm install && npm run build`) is started with
`node server.js` in production mode, configured by its REACT_APP_* variables, and bound to 127.0.0.1 by
`demo/loopback_only.cjs` (its server listens on every interface otherwise). For each draft ServiceRequest
of the order stories it picks the patient and the order, presses "Submit to CRD and display cards" (which
sends order-sign, one order per call), and records what it sent, what the service answered and what the
page shows. Last, it accepts one suggestion, which the generator applies to the FHIR server itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By

from demo.browser import Network, chromium, wait_until
from demo.report import Check
from demo.run import DemoStack, _terminate
from demo.stories import draft_orders

SIGN = "emg-ncs-necessity-order-sign"
SELECT = "emg-ncs-necessity-order-select"
PRELOAD = Path(__file__).resolve().parent / "loopback_only.cjs"
TIMEOUT = 60


def listening_hosts(port: int) -> set[str]:
    """The local addresses a TCP port listens on, from /proc/net/tcp{,6} (Linux)."""
    hosts = set()
    for table, loopback in (
        ("/proc/net/tcp", "0100007F"),
        ("/proc/net/tcp6", "00000000000000000000000001000000"),
    ):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                hosts.add("loopback" if address == loopback else address)
    return hosts


def start(stack: DemoStack, crd: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    if not (crd / "build" / "index.html").exists():
        raise RuntimeError(f"{crd} holds no build/: run npm install && npm run build there")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "NODE_ENV": "production",
        "PORT": str(port),
        "REACT_APP_EHR_SERVER": stack.fhir.base_url,
        "REACT_APP_CDS_SERVICE": stack.discovery_url,
        "REACT_APP_ORDER_SIGN": SIGN,
        "REACT_APP_ORDER_SELECT": SELECT,
        "REACT_APP_PUBLIC_KEYS": f"{url}/public_keys",  # its own key store, not localhost:3000
    }
    log = (work / "crd-server.log").open("wb")
    proc = subprocess.Popen(
        ["node", "-r", str(PRELOAD), "server.js"], cwd=crd, env=env, stdout=log, stderr=log
    )
    wait_until(lambda: _healthy(url) or proc.poll() is not None, TIMEOUT, "the CRD Request Generator")
    if proc.poll() is not None:
        raise RuntimeError(
            f"the CRD Request Generator exited: {(work / 'crd-server.log').read_text()[-2000:]}"
        )
    return proc, url


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def code_of(order: dict[str, Any]) -> str:
    return order["code"]["coding"][0]["code"]


class CrdRun:
    def __init__(self, stack: DemoStack, url: str, out: Path, work: Path) -> None:
        self.stack = stack
        self.url = url
        self.out = out
        self.driver = chromium(work / "crd-profile", width=1400, height=1800)
        self.net = Network(self.driver, f"{stack.service_url}/cds-services/")

    def button(self, text: str) -> Any:
        def find() -> list[Any]:
            return [
                b for b in self.driver.find_elements(By.TAG_NAME, "button") if b.text.strip().upper() == text
            ]

        return wait_until(find, TIMEOUT, f"the button {text!r}")[0]

    def submit(self, patient_id: str, code: str) -> tuple[Any, list[str]]:
        """Pick the patient and its order with this code, send it; the call and the cards the page shows."""
        self.driver.get(self.url)
        self.button("PATIENT SELECT").click()
        xpath = f"//div[contains(@class, 'MuiCard-root')][.//*[normalize-space() = '{patient_id}']]"
        card = wait_until(
            lambda: self.driver.find_elements(By.XPATH, xpath), TIMEOUT, f"patient {patient_id}"
        )[0]
        box = card.find_element(By.CSS_SELECTOR, "input[placeholder='Select a request...']")
        box.click()
        option = wait_until(
            lambda: [
                o
                for o in self.driver.find_elements(By.CSS_SELECTOR, "li[role='option']")
                if f"{code} (" in o.text
            ],
            TIMEOUT,
            f"the request {code} of {patient_id}",
        )[0]
        option.click()
        card.find_element(By.XPATH, ".//*[normalize-space() = 'Click to select this patient']").click()
        self.net.clear()
        self.button("SUBMIT TO CRD AND DISPLAY CARDS").click()
        [call] = self.net.wait(
            lambda e: e.method == "POST" and "/feedback" not in e.url, TIMEOUT, "the hook call"
        )
        body = call.response_json() or {}
        wanted = [" ".join(c["summary"].split()) for c in body.get("cards", [])]

        def shown() -> list[str] | None:
            text = " ".join(
                " ".join(c.text.split()) for c in self.driver.find_elements(By.CSS_SELECTOR, ".decision-card")
            )
            if not wanted:
                return ["No Cards"] if "No Cards" in text else None
            return wanted if all(w in text for w in wanted) else None

        return call, wait_until(shown, TIMEOUT, "the generator's cards")

    def shot(self, name: str) -> str:
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, min(int(height) + 40, 9000))
        self.driver.save_screenshot(str(self.out / name))
        self.driver.set_window_size(1400, 1800)
        return name


def run(stack: DemoStack, crd: Path, out: Path, work: Path) -> list[Check]:
    proc, url = start(stack, crd, work)
    hosts = listening_hosts(int(url.rsplit(":", 1)[1]))
    checks = [
        Check(
            "CRD generator: bound to loopback",
            hosts == {"loopback"},
            f"node server.js with demo/loopback_only.cjs listens on {sorted(hosts)}",
        )
    ]
    crd_run = CrdRun(stack, url, out, work)
    try:
        for n, story in enumerate(stack.stories, 1):
            if story.screen == "patient-view":
                continue
            for order in draft_orders(stack.fhir.base_url, story.patient_id):
                checks.append(_story_order(crd_run, n, story, order))
        checks.append(_delete_suggestion(crd_run, stack))
        checks.append(_apply_suggestion(crd_run, stack))
    finally:
        crd_run.driver.quit()
        _terminate(proc)
    return checks


def _story_order(crd_run: CrdRun, n: int, story: Any, order: dict[str, Any]) -> Check:
    code = code_of(order)
    name = f"CRD generator: story {n}, order {code}"
    try:
        call, titles = crd_run.submit(story.patient_id, code)
    except Exception as exc:  # noqa: BLE001 - a failed check with the evidence, never a crash of the run
        crd_run.net.poll()
        seen = [
            f"{e.method} {e.url} -> {e.status} {(e.response_body or '')[:300]}" for e in crd_run.net.exchanges
        ]
        return Check(name, False, f"{type(exc).__name__}: {exc}", None, seen)
    sent = call.json() or {}
    body = call.response_json() or {}
    rules = [c.get("source", {}).get("topic", {}).get("code") for c in body.get("cards", [])]
    # One card per decision: whichever of the story's orders is sent alone gets the story's card.
    expected = sorted({c.rule for c in story.expect.get(SIGN, ())})
    auth = sent.get("fhirAuthorization")
    ok = call.status == 200 and sorted(set(rules)) == expected
    # The generator sends one order per call: its sibling drafts of the same encounter, read from the
    # chart, must still be counted (the card names them).
    siblings = [
        code_of(o)
        for o in draft_orders(crd_run.stack.fhir.base_url, story.patient_id)
        if o["id"] != order["id"]
    ]
    details_text = " ".join(c.get("detail", "") for c in body.get("cards", []))
    counted = [c for c in siblings if c in details_text]
    ok = ok and (not body.get("cards") or counted == siblings)
    drafts = len(sent["context"]["draftOrders"]["entry"])
    token = json.dumps((auth or {}).get("access_token"))
    seen = (
        f"{story.patient_id} {code}: sent {sent.get('hook')} (hookInstance {sent.get('hookInstance')}) with "
        f"{drafts} draft order(s), fhirAuthorization "
        f"access_token {token}, encounterId {sent['context'].get('encounterId')!r}, prefetch keys "
        f"{sorted(sent.get('prefetch') or {})}; {call.status}; page shows {titles}; rules {rules or 'none'} "
        f"(story expects {expected or 'none'})"
        + (f"; the card counts the sibling draft(s) {counted} of the same encounter" if siblings else "")
    )
    details = [f"{c['summary']}\n{c.get('detail', '')}" for c in body.get("cards", [])]
    return Check(name, ok, seen, crd_run.shot(f"crd-{n:02d}-{code}.png"), details)


def _apply_suggestion(crd_run: CrdRun, stack: DemoStack) -> Check:
    """Story 7's link card: accept its first suggestion, which the generator writes to the FHIR server."""
    story = next(s for s in stack.stories if s.screen == "order-select")
    [order] = draft_orders(stack.fhir.base_url, story.patient_id)
    name = "CRD generator: an accepted update suggestion is applied to the FHIR server"
    try:
        call, _titles = crd_run.submit(story.patient_id, code_of(order))
        card = call.response_json()["cards"][0]
        label = card["suggestions"][0]["label"]
        before = order.get("reasonCode")
        crd_run.button(label.upper()).click()
        updated = wait_until(
            lambda: next(
                (
                    o
                    for o in draft_orders(stack.fhir.base_url, story.patient_id)
                    if o.get("reasonCode") != before
                ),
                None,
            ),
            TIMEOUT,
            "the updated order on the FHIR server",
        )
        again, titles = crd_run.submit(story.patient_id, code_of(order))
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    codes = [c["code"] for rc in updated["reasonCode"] for c in rc.get("coding", [])]
    ok = again.status == 200 and not again.response_json()["cards"]
    seen = (
        f"'{label}' was written to the FHIR server by the generator (order reasons now {codes}); "
        f"resubmitted, the order gets {len(again.response_json()['cards'])} card(s): {titles}"
    )
    return Check(name, ok, seen, crd_run.shot("crd-after-suggestion.png"))


def _delete_suggestion(crd_run: CrdRun, stack: DemoStack) -> Check:
    """Story 6's removal suggestion: CDS Hooks 2.0 deletes name `resourceId`; the generator reads
    `action.resource` (1.0), so it fails and the orders stay. Recorded, not ours to fix."""
    story = next(s for s in stack.stories if s.screen == "order-sign")
    orders = draft_orders(stack.fhir.base_url, story.patient_id)
    name = "CRD generator: a delete suggestion (CDS Hooks 2.0 resourceId)"
    try:
        call, _titles = crd_run.submit(story.patient_id, code_of(orders[0]))
        card = call.response_json()["cards"][0]
        remove = next(s for s in card["suggestions"] if all(a["type"] == "delete" for a in s["actions"]))
        crd_run.driver.get_log("browser")
        crd_run.button(remove["label"].upper()).click()
        errors = wait_until(
            lambda: [e["message"] for e in crd_run.driver.get_log("browser") if e["level"] == "SEVERE"],
            10,
            "a result",
        )
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    left = {o["id"] for o in draft_orders(stack.fhir.base_url, story.patient_id)}
    kept = left == {o["id"] for o in orders}
    seen = (
        f"'{remove['label']}' sends {[a['resourceId'] for a in remove['actions']]} as resourceId (2.0); "
        f"the generator reads action.resource and fails ({errors[0].split(' ', 2)[-1][:120]}); "
        f"the draft orders {'stay on the FHIR server' if kept else 'were deleted'}"
    )
    return Check(name, kept and any("TypeError" in e for e in errors), seen)
