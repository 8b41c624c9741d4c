"""The CDS Hooks sandbox, driven as a clinician would: open a story, read the cards, press the buttons.

Every check compares three things: what the sandbox sent (Chromium's network events), what the service
answered (the same events), and what the page shows (the DOM). Card wording is read from the service's
answer, never written here, so the checks and screenshots can be re-run unchanged after a rewrite.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from demo.browser import Exchange, Network, StaticSite, wait_until
from demo.report import Check
from demo.run import DemoStack
from demo.stories import Story

PV = "l5-radiculopathy-patient-view"
ORDER_SELECT = ("l5-radiculopathy-order-select", "emg-ncs-necessity-order-select")
PAMA_STUDY = "72148"  # the lumbar MRI every PAMA story picks (sandbox_order in the story templates)
TIMEOUT = 60
# The sandbox's section wrappers carry no class (its CSS module lacks them): suggestions are its contained
# buttons, links its text buttons, Dismiss its outlined ones.
SUGGESTION_BUTTONS = "button.MuiButton-contained"
LINK_BUTTONS = "button.MuiButton-text"


@dataclass
class DomCard:
    element: WebElement
    summary: str
    indicator: str
    suggestions: list[str]
    links: list[str]


def service_of(exchange: Exchange) -> str:
    return exchange.url.split("/cds-services/", 1)[1].split("?")[0]


def rules_of(body: dict[str, Any] | None) -> list[str]:
    return [c.get("source", {}).get("topic", {}).get("code", "?") for c in (body or {}).get("cards", [])]


def ordered_codes(exchange: Exchange) -> set[str]:
    """The codes of the draft orders a hook call carries (not its prefetch, which may hold old orders)."""
    body = exchange.json() or {}
    entries = ((body.get("context") or {}).get("draftOrders") or {}).get("entry") or []
    return {
        c.get("code", "")
        for e in entries
        for c in ((e.get("resource") or {}).get("code") or {}).get("coding") or []
        if isinstance(c, dict)
    }


def summaries(*bodies: dict[str, Any] | None) -> list[str]:
    return sorted(" ".join(c["summary"].split()) for b in bodies for c in (b or {}).get("cards", []))


class SandboxRun:
    def __init__(self, stack: DemoStack, site: StaticSite, driver: WebDriver, out: Path, work: Path) -> None:
        self.stack = stack
        self.site = site
        self.driver = driver
        self.out = out
        self.work = work
        self.net = Network(driver, f"{stack.service_url}/cds-services/")

    # -- driving the page ----------------------------------------------------------------------------

    def link(self, story: Story, order: bool = False) -> str:
        make = story.sandbox_order_url if order else story.sandbox_url
        url = make(self.stack.fhir.base_url, self.stack.discovery_url, sandbox=self.site.url)
        assert url, f"{story.key} has no sandbox link"
        return url

    def open(self, url: str) -> None:
        self.net.clear()
        self.driver.get(url)

    def calls(
        self, services: tuple[str, ...], where: Any = None, timeout: float = TIMEOUT
    ) -> dict[str, Exchange]:
        """The latest answered hook call to each of `services` (since the last `open`)."""

        def found(e: Exchange) -> bool:
            return e.method == "POST" and service_of(e) in services and (where is None or where(e))

        def all_there() -> dict[str, Exchange] | None:
            self.net.poll()
            latest = {service_of(e): e for e in self.net.exchanges if e.done and found(e)}
            return latest if set(latest) == set(services) else None

        return wait_until(all_there, timeout, f"hook calls to {', '.join(services)}")

    def dom_cards(self) -> list[DomCard]:
        cards = []
        for el in self.driver.find_elements(By.CSS_SELECTOR, "div.MuiCard-root[class*='decision-card']"):
            classes = el.get_attribute("class") or ""
            indicator = next((i for i in ("critical", "warning", "info") if f"alert-{i}" in classes), "?")
            summary = " ".join(el.find_element(By.CSS_SELECTOR, "p.MuiTypography-root").text.split())
            buttons = el.find_elements(By.CSS_SELECTOR, SUGGESTION_BUTTONS)
            links = el.find_elements(By.CSS_SELECTOR, LINK_BUTTONS)
            cards.append(
                DomCard(el, summary, indicator, [b.text.strip() for b in buttons], [a.text for a in links])
            )
        return cards

    def rendered(self, expected: list[str]) -> list[DomCard]:
        """Wait until the page shows exactly the cards with these summaries (or the empty state)."""

        def shown() -> tuple[list[DomCard]] | None:
            cards = self.dom_cards()
            if sorted(c.summary for c in cards) != expected:
                return None
            if not expected and "No recommendations to display" not in self.body_text():
                return None
            return (cards,)

        return wait_until(shown, TIMEOUT, f"{len(expected)} rendered card(s)")[0]

    def body_text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def shot(self, name: str) -> str:
        """The EHR side of the page (patient banner and cards), all of it, as the user sees it."""
        title = "//h1[normalize-space() = 'Patient View' or normalize-space() = 'PAMA Imaging']/.."
        panes = self.driver.find_elements(By.XPATH, title)
        if not panes:  # another page (e.g. /analytics): the whole of it
            self.driver.set_window_size(1280, 600)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(1280, min(int(height) + 40, 9000))
            self.driver.save_screenshot(str(self.out / name))
            return name
        content = self.driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "const bottoms = Array.from(arguments[0].children, c => c.getBoundingClientRect().bottom);"
            "return Math.max(...bottoms) - r.top;",
            panes[0],
        )
        self.driver.set_window_size(1600, min(int(content) + 200, 9000))
        pane = self.driver.find_element(By.XPATH, title)
        pane.screenshot(str(self.out / name))
        self.driver.set_window_size(1280, 2400)
        return name

    def guarded(self, name: str, check: Any) -> Check:
        """Run one check; a failure becomes a failed Check with the evidence, never a crash of the run."""
        try:
            return check()
        except Exception as exc:  # noqa: BLE001 - reported as a failed check with what the page showed
            shot = "failed-" + "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") + ".png"
            with contextlib.suppress(Exception):
                self.driver.save_screenshot(str(self.out / shot))
            self.net.poll()
            seen = [
                f"{e.method} {e.url} -> {e.status} {(e.response_body or '')[:300]}"
                for e in self.net.exchanges
            ]
            return Check(name, False, f"{type(exc).__name__}: {exc}", shot, seen[-8:])

    # -- stories -------------------------------------------------------------------------------------

    def patient_view_stories(self) -> list[Check]:
        return [
            self.guarded(f"story {n}: patient-view", lambda n=n, story=story: self.patient_view(n, story))
            for n, story in enumerate(self.stack.stories, 1)
            if story.sandbox_url(self.stack.fhir.base_url, self.stack.discovery_url)
        ]

    def patient_view(self, n: int, story: Story) -> Check:
        self.open(self.link(story))
        call = self.calls((PV,))[PV]
        body = call.response_json()
        expected = sorted(c.rule for c in story.expect.get(PV, ()))
        cards = self.rendered(summaries(body))
        sent = call.json() or {}
        ok = call.status == 200 and sorted(rules_of(body)) == expected
        ok = ok and [c.indicator for c in cards] == [c["indicator"] for c in _by_urgency(body)]
        seen = (
            f"{story.patient_id}: {call.status}, {len(cards)} card(s) rendered {_describe(cards)}; "
            f"rules {rules_of(body) or 'none'} (story expects {expected or 'none'}); the sandbox sent "
            f"prefetch {sorted(sent.get('prefetch') or {})}"
            f"{', fhirAuthorization' if 'fhirAuthorization' in sent else ', no fhirAuthorization'}"
        )
        return Check(f"story {n}: patient-view", ok, seen, self.shot(f"sandbox-{n:02d}-patient-view.png"))

    def pick_study(self, code: str) -> None:
        placeholder = "//div[contains(@class, 'placeholder') and normalize-space() = 'Search orders']"
        wait_until(lambda: self.driver.find_elements(By.XPATH, placeholder), TIMEOUT, "the order search box")
        self.driver.find_element(By.XPATH, placeholder).click()
        box = self.driver.switch_to.active_element
        box.send_keys(code)
        wait_until(
            lambda: [o for o in self.driver.find_elements(By.CSS_SELECTOR, "[id*='-option-']") if o.text],
            TIMEOUT,
            f"the PAMA option for {code}",
        )
        box.send_keys(Keys.ENTER)

    def pama_stories(self) -> list[Check]:
        return [
            self.guarded(f"story {n}: PAMA order-select", lambda n=n, story=story: self.pama(n, story))
            for n, story in enumerate(self.stack.stories, 1)
            if story.sandbox_order
        ]

    def pama(self, n: int, story: Story) -> Check:
        self.open(self.link(story, order=True))
        first = self.calls(ORDER_SELECT)  # on load: an order with no study yet
        self.net.clear()
        self.pick_study(PAMA_STUDY)
        calls = self.calls(ORDER_SELECT, where=lambda e: PAMA_STUDY in ordered_codes(e))
        bodies = [calls[s].response_json() for s in ORDER_SELECT]
        statuses = sorted({e.status for e in [*first.values(), *calls.values()]})
        sent = {calls[s].json().get("hook") for s in ORDER_SELECT}
        if statuses != [200]:
            raise AssertionError(
                f"order-select answered {statuses}: {[calls[s].response_body for s in ORDER_SELECT]}"
            )
        cards = self.rendered(summaries(*bodies))
        rules = sorted(r for b in bodies for r in rules_of(b))
        expected = sorted(c.rule for s in ORDER_SELECT for c in story.expect.get(s, ()))
        ok = rules == expected and sent == {"order-select"}
        seen = (
            f"on load (no study yet) and after picking {PAMA_STUDY}, both order-select services answered "
            f"{statuses} to hook {sorted(sent)}; {len(cards)} card(s) rendered {_describe(cards)}; "
            f"rules {rules or 'none'} (story expects {expected or 'none'})"
        )
        return Check(f"story {n}: PAMA order-select", ok, seen, self.shot(f"sandbox-{n:02d}-pama.png"))

    # -- what the sandbox does with our cards ----------------------------------------------------------

    def behaviour(self) -> list[Check]:
        from demo import sandbox_probe  # local: the probe service is only needed for this group

        def story_cards(index: int) -> tuple[dict[str, Any], list[DomCard]]:
            self.open(self.link(self.stack.stories[index]))
            body = self.calls((PV,))[PV].response_json()
            return body, self.rendered(summaries(body))

        def first(check: Any) -> Any:
            return lambda: check(*story_cards(0))

        checks = [
            self.guarded("isRecommended is not displayed", first(_recommended_check)),
            self.guarded("source.url is not opened", first(lambda _body, cards: self._source_check(cards))),
            self.guarded("card links", first(self._links_check)),
            # Accepting a suggestion silences its card for the patient, so it is tried on another story
            # than the one the feedback round trip overrides (story 1).
            self.guarded(
                "patient-view ignores accepted suggestions",
                lambda: self._patient_view_suggestion_check(story_cards(2)[1]),
            ),
            self.guarded("PAMA applies update actions only", lambda: sandbox_probe.pama_update_only(self)),
        ]
        return checks

    def _source_check(self, cards: list[DomCard]) -> Check:
        handles, url = len(self.driver.window_handles), self.driver.current_url
        anchor = cards[0].element.find_element(By.CSS_SELECTOR, "a[class*='source-link']")
        href = anchor.get_attribute("href")
        anchor.click()
        opened = len(self.driver.window_handles) > handles or self.driver.current_url != url
        seen = (
            f"the source label links to {href}, but a click opens nothing (the sandbox prevents the default)"
        )
        return Check("source.url is not opened", not opened, seen if not opened else "a click opened the URL")

    def _links_check(self, body: dict[str, Any], cards: list[DomCard]) -> Check:
        with_links = [c for c in body.get("cards", []) if c.get("links")]
        if not with_links:
            return Check("card links", True, "no card of this story carries `links` yet: nothing to open")
        dom = next(c for c in cards if c.links)
        before = len(self.driver.window_handles)
        dom.element.find_elements(By.CSS_SELECTOR, LINK_BUTTONS)[0].click()
        wait_until(lambda: len(self.driver.window_handles) > before, 10, "a new tab for the link")
        self.driver.switch_to.window(self.driver.window_handles[0])
        seen = f"links render as buttons {dom.links}; a click opens the URL in a new tab"
        return Check("card links open in a new tab", True, seen)

    def _patient_view_suggestion_check(self, cards: list[DomCard]) -> Check:
        card = next(c for c in cards if c.suggestions)
        before = self.body_text()
        self.net.clear()
        card.element.find_elements(By.CSS_SELECTOR, SUGGESTION_BUTTONS)[0].click()
        [feedback] = self.net.wait(lambda e: e.url.endswith("/feedback"), TIMEOUT, "accepted feedback")
        item = feedback.json()["feedback"][0]
        unchanged = self.body_text() == before
        seen = (
            f"clicking '{card.suggestions[0]}' posts feedback outcome '{item['outcome']}' "
            f"({feedback.status}) and changes nothing on the page: no order is added, the card stays"
        )
        details = [json.dumps(feedback.json(), indent=2)]
        return Check(
            "patient-view ignores accepted suggestions",
            unchanged and feedback.status == 200,
            seen,
            None,
            details,
        )

    # -- the feedback round trip -----------------------------------------------------------------------

    def feedback_round_trip(self) -> list[Check]:
        from demo import sandbox_feedback  # local: keeps this module about rendering

        checks: list[Check] = []

        def steps() -> Check:
            checks.extend(sandbox_feedback.round_trip(self))
            return Check("feedback round trip", True, "")

        outcome = self.guarded("feedback round trip", steps)
        return checks if outcome.ok else [*checks, outcome]

    def https_loopback(self) -> list[Check]:
        from demo import sandbox_probe

        return [sandbox_probe.https_loopback(self)]


def _by_urgency(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The order the sandbox shows cards in: critical first (a stable sort on the indicator)."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted((body or {}).get("cards", []), key=lambda c: rank.get(c["indicator"], 3))


def _describe(cards: list[DomCard]) -> str:
    return "(" + "; ".join(f"{c.indicator}: {c.summary[:60]}" for c in cards) + ")" if cards else "(none)"


def _recommended_check(body: dict[str, Any], cards: list[DomCard]) -> Check:
    card = next(
        (c for c in body.get("cards", []) if any(s.get("isRecommended") for s in c.get("suggestions", []))),
        None,
    )
    if card is None:
        return Check("isRecommended is not displayed", False, "no card of story 1 recommends a suggestion")
    dom = next(c for c in cards if c.summary == " ".join(card["summary"].split()))
    buttons = dom.element.find_elements(By.CSS_SELECTOR, SUGGESTION_BUTTONS)
    looks = {(b.get_attribute("class"), b.value_of_css_property("background-color")) for b in buttons}
    labels = [s["label"] for s in card["suggestions"]]
    same = len(looks) == 1 and [b.text.strip() for b in buttons] == labels
    recommended = next(s["label"] for s in card["suggestions"] if s.get("isRecommended"))
    seen = (
        f"'{recommended}' is recommended, yet all {len(buttons)} buttons have the same class and colour "
        "and show only their label"
    )
    return Check("isRecommended is not displayed", same, seen)


def fetch_text(url: str) -> str:
    return requests.get(url, timeout=10).text
