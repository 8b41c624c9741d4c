"""Demo stories: patient templates with relative dates, turned into FHIR resources at load time.

A template (`fhir_fixtures/demo/*.yaml`) holds a `story` header (patient id, one-line story, the sandbox
screen it opens on, the cards each service must return) and the patient's FHIR `resources`. Two
directives keep templates legible and the stories true on any day:

- `{$ago: P2W}` becomes `2026-11-08` (today minus an ISO 8601 duration: years, months, weeks, days);
  `{$ago: P2W, time: "16:30:00Z"}` becomes `2026-11-08T16:30:00Z`.
- `{$base64: text}` becomes the base64 of the UTF-8 text, so report attachments stay readable.
- `{$pdf: {binary: ID, text: ..., title: ..., scanned: true}}` (scanned: an image of the page, no text
  layer) as an attachment becomes `{contentType: application/pdf,
  url: Binary/ID}`, and the story gains a Binary ID holding the text as a PDF (generated with fpdf2), as an
  EHR stores an EMG machine's export: the service must fetch and read it (issue 14).

"Today" is the UTC date because the service measures durations with `datetime.now(UTC)`: a local date
would be a day off every evening west of Greenwich.
"""

from __future__ import annotations

import base64
import calendar
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
import yaml

DEMO_DIR = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "demo"
SANDBOX = "https://sandbox.cds-hooks.org/"
SCREENS = ("patient-view", "order-select", "order-sign")
DEMO_USER = "Practitioner/demo-clinician"
_DURATION = re.compile(r"^P(?:(?P<y>\d+)Y)?(?:(?P<m>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?$")


def utc_today() -> date:
    """The date the service's clock is on (see the module docstring)."""
    return datetime.now(UTC).date()


def ago(duration: str, today: date) -> date:
    """`today` minus an ISO 8601 date duration (`P1Y2M`, `P6W`, `P58D`); month ends are clamped."""
    match = _DURATION.match(duration)
    if not match or duration == "P":
        raise ValueError(f"not an ISO 8601 date duration (PnYnMnWnD): {duration!r}")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    months = today.year * 12 + (today.month - 1) - parts["y"] * 12 - parts["m"]
    year, month = divmod(months, 12)
    day = min(today.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day) - timedelta(weeks=parts["w"], days=parts["d"])


def materialize(value: Any, today: date) -> Any:
    """Replace every `$ago` / `$base64` directive in a template, recursively."""
    if isinstance(value, list):
        return [materialize(v, today) for v in value]
    if not isinstance(value, dict):
        return value
    if "$ago" in value:
        if set(value) - {"$ago", "time"}:
            raise ValueError(f"$ago takes only a duration and an optional time: {value}")
        when = ago(str(value["$ago"]), today).isoformat()
        return f"{when}T{value['time']}" if "time" in value else when
    if "$base64" in value:
        if len(value) != 1:
            raise ValueError(f"$base64 takes only the text: {sorted(value)}")
        return base64.b64encode(str(value["$base64"]).encode("utf-8")).decode("ascii")
    if "$pdf" in value:
        spec = _pdf_spec(value)
        attachment = {"contentType": "application/pdf", "url": f"Binary/{spec['binary']}"}
        return attachment | ({"title": spec["title"]} if "title" in spec else {})
    return {k: materialize(v, today) for k, v in value.items()}


def _pdf_spec(value: dict[str, Any]) -> dict[str, Any]:
    spec = value["$pdf"]
    if len(value) != 1 or not isinstance(spec, dict) or set(spec) - {"binary", "text", "title", "scanned"}:
        raise ValueError(f"$pdf takes only {{binary, text, title, scanned}}: {value}")
    if not spec.get("binary") or not spec.get("text"):
        raise ValueError(f"$pdf needs a binary id and the report text: {value}")
    return spec


def pdf_binaries(value: Any) -> list[dict[str, Any]]:
    """The Binary resources the `$pdf` directives of a template ask for, the PDFs made from their text."""
    if isinstance(value, list):
        return [b for v in value for b in pdf_binaries(v)]
    if not isinstance(value, dict):
        return []
    if "$pdf" in value:
        # fpdf2: a demo/test dependency, loaded on use
        from fhir_fixtures.report_files import pdf_report, scanned_pdf_report

        spec = _pdf_spec(value)
        make = scanned_pdf_report if spec.get("scanned") else pdf_report  # scanned: an image, no text layer
        data = base64.b64encode(make(str(spec["text"]))).decode("ascii")
        return [
            {"resourceType": "Binary", "id": spec["binary"], "contentType": "application/pdf", "data": data}
        ]
    return [b for v in value.values() for b in pdf_binaries(v)]


@dataclass(frozen=True)
class ExpectedCard:
    """A card a service must return for a story, as the test compares it."""

    rule: str  # source.topic.code
    indicator: str
    suggests: tuple[str, ...] = ()  # codes the suggestions order or put on the order
    recommended: tuple[str, ...] = ()
    order: str | None = None  # EMG/NCS cards: the draft order the card is about


@dataclass(frozen=True)
class Story:
    key: str  # template file stem, e.g. "01-l5-no-mri"
    patient_id: str
    title: str  # the one line `make demo` prints
    screen: str  # the hook the story is about: patient-view, order-select or order-sign
    sandbox_order: str | None  # what to pick on the sandbox's PAMA (order) screen, and what it shows
    sandbox_gap: str | None  # why the sandbox cannot send this story's order (then it is replayed)
    expect: dict[str, tuple[ExpectedCard, ...]]  # service id -> cards; a service not named returns none
    template: tuple[dict[str, Any], ...]

    @property
    def replay_hook(self) -> str:
        """The order hook that replays the story's draft order when the sandbox cannot send it."""
        return self.screen if self.screen != "patient-view" else "order-select"

    def resources(self, today: date) -> list[dict[str, Any]]:
        """The story's FHIR resources, plus a Binary for each report it keeps as a PDF."""
        return [materialize(r, today) for r in self.template] + pdf_binaries(list(self.template))

    def _being_written(self, resource: dict[str, Any]) -> bool:
        """A patient-view story's draft order is the order the clinician writes *after* reading the cards:
        it is not on the chart yet (a pended order on the chart would rightly silence the MRI card)."""
        return (
            self.screen == "patient-view"
            and resource["resourceType"] == "ServiceRequest"
            and resource.get("status") == "draft"
        )

    def chart(self, today: date) -> list[dict[str, Any]]:
        """What the FHIR server holds for this patient."""
        return [r for r in self.resources(today) if not self._being_written(r)]

    def orders_being_written(self, today: date) -> list[dict[str, Any]]:
        """Draft orders a replayed order hook carries in draftOrders, not read from the chart."""
        return [r for r in self.resources(today) if self._being_written(r)]

    def sandbox_url(self, fhir_base: str, discovery_url: str, sandbox: str = SANDBOX) -> str | None:
        """The sandbox's patient-view screen on this patient, our FHIR server and our discovery endpoint;
        None for a story about an order hook, which the sandbox cannot send (see `sandbox_order_url`).

        The screen and hook are spelled out: the sandbox remembers the last ones in localStorage, so a link
        without them opens the PAMA screen again after a PAMA link was followed.
        """
        if self.screen != "patient-view":
            return None
        return sandbox_link(
            sandbox, fhir_base, self.patient_id, discovery_url, screen="patient-view", hook="patient-view"
        )

    def sandbox_order_url(self, fhir_base: str, discovery_url: str, sandbox: str = SANDBOX) -> str | None:
        """The sandbox's order screen (PAMA) on this patient, for a story whose order can be picked there.

        PAMA calls only the order-select services: it has no sign button, and the `hook` query parameter
        merely renames the hook in every request body, so `hook=order-sign` sends order-sign to the
        order-select services, which answer 400. The link therefore always says `hook=order-select`.
        """
        if not self.sandbox_order:
            return None
        return sandbox_link(
            sandbox, fhir_base, self.patient_id, discovery_url, screen="pama", hook="order-select"
        )


def sandbox_link(sandbox: str, fhir_base: str, patient_id: str, discovery_url: str, **screen: str) -> str:
    params = {"fhirServiceUrl": fhir_base, "patientId": patient_id, "serviceDiscoveryURL": discovery_url}
    return f"{sandbox}?{urlencode({**params, **screen}, safe=':/')}"


def _expected(raw: dict[str, Any], where: str) -> dict[str, tuple[ExpectedCard, ...]]:
    out = {}
    for service, cards in (raw or {}).items():
        out[service] = tuple(
            ExpectedCard(
                rule=c["rule"],
                indicator=c["indicator"],
                suggests=tuple(sorted(str(x) for x in c.get("suggests", []))),
                recommended=tuple(sorted(str(x) for x in c.get("recommended", []))),
                order=c.get("order"),
            )
            for c in cards or []
        )
        if any(set(c) - {"rule", "indicator", "suggests", "recommended", "order"} for c in cards or []):
            raise ValueError(f"{where}: unknown key in the expected cards of {service}")
    return out


def load_story(path: Path) -> Story:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    head = doc["story"]
    if head["screen"] not in SCREENS:
        raise ValueError(f"{path.name}: screen must be one of {SCREENS}")
    resources = tuple(doc["resources"])
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if [p["id"] for p in patients] != [head["patient"]]:
        raise ValueError(f"{path.name}: needs exactly one Patient, with id {head['patient']}")
    order, gap = head.get("sandbox_order"), head.get("sandbox_gap")
    if (order is None) == (gap is None):
        raise ValueError(f"{path.name}: give either sandbox_order (what to pick) or sandbox_gap (why not)")
    return Story(
        key=path.stem,
        patient_id=head["patient"],
        title=" ".join(head["title"].split()),
        screen=head["screen"],
        sandbox_order=" ".join(order.split()) if order else None,
        sandbox_gap=" ".join(gap.split()) if gap else None,
        expect=_expected(head.get("expect"), path.name),
        template=resources,
    )


def load_stories(directory: Path = DEMO_DIR) -> list[Story]:
    """Every story, in file-name order (the order `make demo` prints them)."""
    stories = [load_story(p) for p in sorted(directory.glob("*.yaml"))]
    if not stories:
        raise FileNotFoundError(f"no demo stories (*.yaml) in {directory}")
    return stories


def transaction(story: Story, today: date) -> dict[str, Any]:
    """The story's resources as one FHIR transaction, PUT by id so that reloading is idempotent.

    One transaction per story: Medplum refuses a transaction with more than 50 updates, and a story is
    the unit that must load completely or not at all.
    """
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in story.chart(today)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def draft_orders(
    fhir_base: str, patient_id: str, session: requests.Session | None = None
) -> list[dict[str, Any]]:
    """The patient's draft ServiceRequests as the FHIR server holds them (what an EHR's order screen has)."""
    resp = (session or requests).get(
        f"{fhir_base}/ServiceRequest",
        params={"patient": patient_id, "status": "draft", "_count": 100},
        headers={"Accept": "application/fhir+json"},
        timeout=10,
    )
    resp.raise_for_status()
    return [e["resource"] for e in resp.json().get("entry", [])]


def hook_request(
    fhir_base: str,
    patient_id: str,
    hook: str,
    session: requests.Session | None = None,
    writing: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A hook call with no prefetch, so the service fetches the chart from `fhir_base` itself.

    Order hooks carry the patient's draft orders from the server, plus `writing` (the orders being written
    that are not on the chart yet); order-select selects all of them.
    """
    context: dict[str, Any] = {"userId": DEMO_USER, "patientId": patient_id}
    if hook != "patient-view":
        drafts = [*draft_orders(fhir_base, patient_id, session), *(writing or [])]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
        if hook == "order-select":
            context["selections"] = [f"ServiceRequest/{d['id']}" for d in drafts]
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_base, "context": context}
