"""Report attachments against the real FHIR test server (Medplum's engine), issue 14.

The server holds Binary resources with a real EMG report in each content type (PDF and RTF generated
here with fpdf2 and pandoc, HTML, plain text in Latin-1). A hook call whose report points at a Binary by
url, with prefetch present or absent, must give the same cards as the inline version; every failure mode
answers 200 with the cards of what arrived.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cds.app import create_app
from cds.cards import Card, Source
from cds.registry import HookInput, Service
from fhir_fixtures.report_files import html_report, pdf_report, rtf_report, scanned_pdf_report, truncated
from hooks.app import create_app as production_app
from tests.builders import FIXTURES, post, settings
from tests.fhir_engine import FhirEngine
from tests.hostile_fhir import HostileFhir

pytestmark = pytest.mark.integration
SCENARIOS = FIXTURES / "scenarios"
NOW = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
# (fixture, service): the EMG report carries the finding the cards depend on.
CASES = {
    "01": ("01-l5-no-mri.json", "l5-radiculopathy-patient-view"),
    "07": ("07-progressive-foot-drop.json", "l5-radiculopathy-patient-view"),
    "24": ("24-os-lumbar-mri-documentation.json", "l5-radiculopathy-order-select"),
}
FORMATS = {
    "pdf": ("application/pdf", lambda text: pdf_report(text, pages=2)),
    "rtf": ("text/rtf", rtf_report),
    "html": ("text/html", lambda text: html_report(text).encode("utf-8")),
    "latin1": ("text/plain; charset=ISO-8859-1", lambda text: text.encode("latin-1")),
}
BROKEN = {
    "scan": ("application/pdf", scanned_pdf_report, "no-text-layer"),
    "locked": ("application/pdf", lambda text: pdf_report(text, user_password="secret"), "encrypted"),
    "cut": ("application/pdf", lambda text: truncated(pdf_report(text)), "corrupt"),
}


def report_text(body: dict[str, Any]) -> str:
    """The EMG report of the fixture: its presented text, or its conclusion as the report's impression."""
    rep = emg_report(body)
    for att in rep.get("presentedForm", []):
        return base64.b64decode(att["data"]).decode("utf-8")
    return f"ELECTRODIAGNOSTIC CONSULTATION\n\nIMPRESSION:\n{rep['conclusion']}"


def emg_report(body: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in body["prefetch"]["reports"]["entry"]
        if "EMG" in json.dumps(e["resource"].get("code", {}))
    )


def variant(case: str, tag: str, attachment: dict[str, Any] | None) -> dict[str, Any]:
    """The fixture for a new patient (ids suffixed with `tag`), its EMG report's text only in `attachment`."""
    name, _ = CASES[case]
    text = (SCENARIOS / name).read_text()
    original = json.loads(text)
    pid = original["context"]["patientId"]
    text = re.sub(rf'(?<=["/]){pid[3:]}-', f"{pid[3:]}{tag}-", text.replace(pid, f"{pid}-{tag}"))
    body = json.loads(text)
    body["hookInstance"] = f"{body['hookInstance'][:-4]}{abs(hash(tag)) % 10000:04d}"
    rep = emg_report(body)
    rep.pop("conclusion", None)
    rep.pop("presentedForm", None)
    if attachment is not None:
        rep["presentedForm"] = [attachment]
    return body


def transaction(body: dict[str, Any], binaries: list[dict[str, Any]] = ()) -> dict[str, Any]:
    pid = body["context"]["patientId"]
    resources = [{"resourceType": "Patient", "id": pid, "active": True}, *binaries]
    for value in body["prefetch"].values():
        resources += [e["resource"] for e in (value or {}).get("entry", [])]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def binary(bid: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "id": bid,
        "contentType": content_type,
        "data": base64.b64encode(data).decode(),
    }


def inline_text(text: str) -> dict[str, Any]:
    return {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirEngine]:
    FhirEngine.ensure_installed()
    with FhirEngine.start(port=0) as engine:
        yield engine


@pytest.fixture(scope="module")
def client():
    app = production_app(settings(clock=NOW, fhir_deadline_s=5.0))
    with app.test_client() as c:
        yield c


def cards(response: Any) -> list[tuple[str, str, int]]:
    assert response.status_code == 200, response.get_json()
    return sorted(
        (c["source"]["topic"]["code"], c["indicator"], len(c.get("suggestions", [])))
        for c in response.get_json()["cards"]
    )


def by_url(fhir: FhirEngine, case: str, tag: str, content_type: str, data: bytes, url: str | None = None):
    """Store the report file as a Binary and the chart pointing at it; the hook body with prefetch."""
    bid = f"emg-{case}-{tag}"
    body = variant(case, tag, {"contentType": content_type, "url": url or f"Binary/{bid}"})
    fhir.load_bundle(transaction(body, [binary(bid, content_type, data)]))
    body["fhirServer"] = fhir.base_url
    return body


def without_prefetch(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out.pop("prefetch")
    return out


@pytest.fixture(scope="module")
def inline_cards(client) -> dict[str, list[tuple[str, str, int]]]:
    """Cards of the inline version of each case; they must match the fixture's own answer."""
    out = {}
    for case, (name, service) in CASES.items():
        original = json.loads((SCENARIOS / name).read_text())
        expected = cards(post(client, service, original))
        inline = cards(post(client, service, variant(case, "inline", inline_text(report_text(original)))))
        bare = cards(post(client, service, variant(case, "bare", None)))
        assert inline == expected and inline, f"{case}: the report text alone gives the fixture's cards"
        assert bare != inline, f"{case}: without the report the cards must differ (the attachment matters)"
        out[case] = inline
        out[f"{case}-bare"] = bare
    return out


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_report_by_url_gives_the_inline_cards_with_prefetch_and_without(
    fhir, client, inline_cards, case, fmt, capsys
):
    content_type, make = FORMATS[fmt]
    text = report_text(json.loads((SCENARIOS / CASES[case][0]).read_text()))
    body = by_url(fhir, case, fmt, content_type, make(text))
    service = CASES[case][1]
    capsys.readouterr()
    assert cards(post(client, service, body)) == inline_cards[case], "prefetch present, attachment by url"
    assert cards(post(client, service, without_prefetch(body))) == inline_cards[case], "prefetch absent"
    assert cards(post(client, service, without_prefetch(body))) == inline_cards[case], "again"
    calls = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"hook.call"' in x]
    # The prefetched report has no meta.versionId and the server's copy has one: the file is cached per
    # version, so the server's copy is fetched once and then read from the cache.
    assert [c["attachments"] for c in calls] == [{"fetched": 1}, {"fetched": 1}, {"cached": 1}]


def test_binary_json_form_is_read_too(fhir, client, inline_cards):
    text = report_text(json.loads((SCENARIOS / CASES["01"][0]).read_text()))
    body = by_url(fhir, "01", "json", "application/pdf", pdf_report(text))
    fhir.set_binary_format("json")
    try:
        assert cards(post(client, CASES["01"][1], body)) == inline_cards["01"]
    finally:
        fhir.set_binary_format("negotiate")


UNREADABLE_CARD = [("emg-unreadable", "info", 0)]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_unreadable_report_gives_the_not_machine_readable_card_and_logs_why(fhir, client, kind, capsys):
    """Brief 5.5: no Rule-A card from a report the service cannot read; an info card says it is there."""
    content_type, make, reason = BROKEN[kind]
    text = report_text(json.loads((SCENARIOS / CASES["01"][0]).read_text()))
    body = by_url(fhir, "01", kind, content_type, make(text))
    capsys.readouterr()
    response = post(client, CASES["01"][1], without_prefetch(body))
    assert cards(response) == UNREADABLE_CARD
    (card,) = response.get_json()["cards"]
    assert "EMG/NCS report, " in card["detail"] and "Binary/" not in card["detail"]
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"evidence_unreadable"' in x]
    assert [e["reason"] for e in events] == [reason]


def test_binary_404_and_oversized_attachment_answer_with_the_other_evidence(fhir, inline_cards, capsys):
    app = production_app(settings(clock=NOW, fhir_deadline_s=5.0, attachment_max_bytes=3000))
    client = app.test_client()
    text = report_text(json.loads((SCENARIOS / CASES["01"][0]).read_text()))
    missing = by_url(fhir, "01", "gone", "application/pdf", pdf_report(text), url="Binary/does-not-exist")
    big = by_url(fhir, "01", "big", "application/pdf", pdf_report(text, pages=3))
    capsys.readouterr()
    # A file never obtained says nothing (no card); one too large to read is worth a look.
    assert cards(post(client, CASES["01"][1], missing)) == inline_cards["01-bare"]
    assert cards(post(client, CASES["01"][1], without_prefetch(big))) == UNREADABLE_CARD
    reasons = [
        json.loads(x)["reason"] for x in capsys.readouterr().out.splitlines() if "evidence_unreadable" in x
    ]
    assert reasons == ["not-found", "too-large"]


def test_slow_binary_past_the_deadline_gives_cards_from_what_arrived(fhir, inline_cards):
    app = production_app(settings(clock=NOW, fhir_deadline_s=1.5))
    text = report_text(json.loads((SCENARIOS / CASES["01"][0]).read_text()))
    body = by_url(fhir, "01", "slow", "application/pdf", pdf_report(text))
    fhir.set_delay(3000, "Binary")
    try:
        started = time.perf_counter()
        response = post(app.test_client(), CASES["01"][1], body)
        elapsed = time.perf_counter() - started
    finally:
        fhir.set_delay(0, "Binary")
    assert response.status_code == 200, "a missing attachment alone is never a 412"
    assert cards(response) == inline_cards["01-bare"]
    assert elapsed < 2.2, f"deadline 1.5 s, the call took {elapsed:.2f} s"


def test_foreign_host_url_is_refused_and_nothing_is_fetched(fhir, client, inline_cards):
    with HostileFhir() as foreign:
        url = f"{foreign.base('healthy')}/Binary/emg"
        text = report_text(json.loads((SCENARIOS / CASES["01"][0]).read_text()))
        body = by_url(fhir, "01", "foreign", "application/pdf", pdf_report(text), url=url)
        assert cards(post(client, CASES["01"][1], body)) == inline_cards["01-bare"]
        assert foreign.count("healthy") == 0


def test_search_parameter_the_server_refuses_is_dropped_once_and_logged(fhir, capsys):
    def count(inp: HookInput) -> list[Card]:
        return [
            Card(summary=f"{len(inp.of('Condition'))} conditions", indicator="info", source=Source(label="t"))
        ]

    service = Service(
        id="narrow",
        hook="patient-view",
        title="narrow",
        description="a template with a parameter this server does not know",
        prefetch={"conditions": "Condition?patient={{context.patientId}}&x-site-flag=1"},
        handler=count,
    )
    body = json.loads((SCENARIOS / CASES["01"][0]).read_text())
    fhir.load_bundle(transaction(body))
    app = create_app(settings(fhir_deadline_s=5.0), services=[service])
    request = {"hook": "patient-view", "hookInstance": "6d7d0c84-5b47-4d0b-a9c1-6e0f2d0cb0a1"}
    request |= {"context": body["context"], "fhirServer": fhir.base_url}
    capsys.readouterr()
    response = post(app.test_client(), "narrow", request)
    assert response.status_code == 200 and response.get_json()["cards"][0]["summary"] == "1 conditions"
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "narrowing_refused" in x]
    assert [e["dropped"] for e in events] == [["x-site-flag"]]
