"""Two questions about the sandbox itself, checked rather than read from its source.

- Which suggestion actions does the PAMA screen apply? A probe CDS service (this engine, one test card)
  offers a create, an update carrying the PAMA rating extension, and an update without it.
- What does a user see when the sandbox is an https page (as sandbox.cds-hooks.org is) and Chromium
  guards the loopback addresses of `make demo`? The built sandbox is served over https and Chromium is
  told to treat that origin as public, which is what the real site is.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from cds.app import create_app
from cds.cards import Action, Card, Coding, Source, Suggestion
from cds.config import Settings
from cds.registry import HookInput, Service
from demo.browser import StaticSite, chromium, wait_until
from demo.report import Check
from demo.sandbox_flows import TIMEOUT
from demo.stories import sandbox_link

if TYPE_CHECKING:
    from demo.sandbox_flows import SandboxRun

CPT = "http://www.ama-assn.org/go/cpt"
FROM, TO = "72148", "72158"
RATING = "http://fhir.org/argonaut/Extension/pama-rating"
REASON = {"system": "http://snomed.info/sct", "code": "128196005", "display": "Lumbar radiculopathy"}


def _order(code: str, display: str, rating: bool) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "example-request-id",
        "status": "draft",
        "intent": "plan",
        "code": {"coding": [{"system": CPT, "code": code, "display": display}]},
        "reasonCode": [{"coding": [REASON]}],
    }
    if rating:
        order["extension"] = [{"url": RATING, "valueCodeableConcept": {"coding": [{"code": "appropriate"}]}}]
    return order


def probe_card(inp: HookInput) -> list[Card]:
    """One card while the PAMA order is 72148; the three kinds of action the question is about."""
    codes = {c.code for o in inp.draft_orders for c in (o.code.coding if o.code else [])}
    if FROM not in codes:
        return []
    mri = "MRI lumbar spine without and with contrast"
    suggestions = [
        (
            "probe: create a new order",
            Action(type="create", description="create", resource=_order(TO, mri, False)),
        ),
        (
            "probe: update, no PAMA rating",
            Action(type="update", description="update", resource=_order(TO, mri, False)),
        ),
        (
            "probe: update with PAMA rating",
            Action(type="update", description="update", resource=_order(TO, mri, True)),
        ),
    ]
    return [
        Card(
            summary="Probe: which suggestion actions does the PAMA screen apply?",
            indicator="info",
            source=Source(label="sandbox probe", topic=Coding(system="urn:probe", code="probe")),
            suggestions=[Suggestion(label=label, actions=[action]) for label, action in suggestions],
            selectionBehavior="at-most-one",
        )
    ]


def _probe_server(work: Path) -> tuple[Any, str]:
    service = Service(
        id="pama-probe", hook="order-select", title="probe", description="probe", handler=probe_card
    )
    settings = Settings(
        data_dir=work / "probe",
        hash_key="probe",
        auth="off",
        log_level="ERROR",
        fhir_allowed_hosts=["127.0.0.1"],
    )
    server = make_server("127.0.0.1", 0, create_app(settings, [service]), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/cds-services"


def _applied(page: str) -> bool:
    return "without and with contrast" in page and "appropriate" in page.split("PAMA Rating:")[-1][:40]


def pama_update_only(run: SandboxRun) -> Check:
    server, discovery = _probe_server(run.work)
    try:
        story = run.stack.stories[0]
        url = sandbox_link(
            run.site.url,
            run.stack.fhir.base_url,
            story.patient_id,
            discovery,
            screen="pama",
            hook="order-select",
        )
        run.driver.get(url)
        run.driver.get_log("browser")
        outcome = {}
        for label in (
            "probe: create a new order",
            "probe: update, no PAMA rating",
            "probe: update with PAMA rating",
        ):
            run.pick_study(FROM)
            button = wait_until(
                lambda label=label: [
                    b for b in run.driver.find_elements(By.TAG_NAME, "button") if b.text == label
                ],
                TIMEOUT,
                f"the probe button {label!r}",
            )[0]
            button.click()
            try:  # applied = the PAMA order turns into the suggested study and shows its rating
                wait_until(lambda: _applied(run.body_text()), 3, "the suggestion to be applied")
                applied = True
            except TimeoutError:
                applied = False
            errors = [e["message"] for e in run.driver.get_log("browser") if e["level"] == "SEVERE"]
            outcome[label] = (applied, next((e for e in errors if "TypeError" in e), None))
        shot = run.shot("sandbox-pama-probe.png")
    finally:
        server.shutdown()
    create, bare, rated = (outcome[k] for k in outcome)
    ok = not create[0] and not bare[0] and rated[0]
    seen = (
        "PAMA applies only `update` actions, and only with the Argonaut pama-rating extension: "
        f"create -> {'applied' if create[0] else 'ignored'}; update without the extension -> "
        f"{'applied' if bare[0] else 'not applied'}{' (TypeError in the console)' if bare[1] else ''}; "
        f"update with it -> {'the order and the rating change' if rated[0] else 'not applied'}"
    )
    return Check("PAMA applies update actions only", ok, seen, shot, [e for _, e in outcome.values() if e])


# -- https and loopback --------------------------------------------------------------------------------


def https_loopback(run: SandboxRun) -> Check:
    """The sandbox over https with a public origin (as sandbox.cds-hooks.org has), calling loopback."""
    site = StaticSite(run.site.directory, tls=True)
    profile = Path(tempfile.mkdtemp(prefix="https-profile-", dir=run.work))
    driver = chromium(
        profile,
        "--ignore-certificate-errors",
        f"--ip-address-space-overrides=127.0.0.1:{site.port}=public",
        height=900,
    )
    story = run.stack.stories[0]
    url = sandbox_link(site.url, run.stack.fhir.base_url, story.patient_id, run.stack.discovery_url)
    try:
        driver.get(url)
        blocked = wait_until(
            lambda: _state(driver), 30, "the sandbox to settle (cards, or a prompt for a FHIR server)"
        )
        errors = sorted({_short(e["message"]) for e in driver.get_log("browser") if e["level"] == "SEVERE"})
        driver.save_screenshot(str(run.out / "sandbox-https-loopback-blocked.png"))
        granted, allowed = None, "not tried"
        for names in PERMISSION_NAMES:  # whichever name this Chromium gives the local-network permission
            if not _grant(driver, site.url, names):
                continue
            driver.get(url)
            allowed = wait_until(lambda: _state(driver), 30, "the sandbox after the permission")
            if allowed == "cards":
                granted = "+".join(names)
                driver.save_screenshot(str(run.out / "sandbox-https-loopback-allowed.png"))
                break
    finally:
        driver.quit()
        site.stop()
    seen = (
        f"served over https with a public origin, the sandbox showed: {blocked}; console: {errors[:3]}. "
        f"With the browser permission {granted or '(none could be granted)'} it showed: {allowed}"
    )
    return Check(
        "https page, loopback service",
        blocked != "cards" and allowed == "cards",
        seen,
        "sandbox-https-loopback-blocked.png",
    )


def _state(driver: Any) -> str | None:
    text = driver.find_element(By.TAG_NAME, "body").text
    if "Change FHIR Server" in text or "Change Patient" in text:
        return (
            "a 'Change FHIR Server' / 'Change Patient' prompt"
            if "Change FHIR Server" in text
            else "a 'Change Patient' prompt"
        )
    if driver.find_elements(By.CSS_SELECTOR, "div.MuiCard-root[class*='decision-card']"):
        return "cards"
    return None


PERMISSION_NAMES = (["loopbackNetwork"], ["localNetwork", "loopbackNetwork"], ["localNetworkAccess"])


def _grant(driver: Any, origin: str, names: list[str]) -> bool:
    try:
        driver.execute_cdp_cmd(
            "Browser.grantPermissions", {"permissions": names, "origin": origin.rstrip("/")}
        )
        return True
    except WebDriverException:
        return False


def _short(message: str) -> str:
    return message.split(" - ", 1)[-1][:200]
