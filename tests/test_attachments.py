"""Report attachments (issue 14), engine side: fetched by url through the FHIR client, read into text.

A test-only service lists, for each report and note, what the clinical side gets from the engine: the
attachment's text (`attachment_text`) or why there is none (`attachment_unreadable`).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import responses

from cds.app import create_app
from cds.attachments import SOURCE_TYPE_URL, UNREADABLE_URL
from cds.cards import Card, Source
from cds.documents import Limits, Unreadable, read_document
from cds.fhir import Deadline
from cds.registry import HookInput, Service
from fhir_fixtures.report_files import (
    html_report,
    pdf_bomb,
    pdf_report,
    rtf_report,
    scanned_pdf_report,
    truncated,
)
from hooks.common.fhir import (
    attachment_missing,
    attachment_source_type,
    attachment_text,
    attachment_unreadable,
)
from tests.builders import FHIR, post, pv_request, settings

TOKEN = "attachment-token-value"
REPORT = (
    "ELECTRODIAGNOSTIC CONSULTATION\n\n"
    "NEEDLE EMG:\nFibrillation potentials in the left tibialis anterior.\n\n"
    "IMPRESSION:\nElectrodiagnostic evidence of a left L5 radiculopathy with active denervation."
)


def listing(inp: HookInput) -> list[Card]:
    lines = []
    for rtype, field in (("DiagnosticReport", "presentedForm"), ("DocumentReference", "content")):
        for res in inp.of(rtype):
            for item in getattr(res, field) or []:
                att = item.attachment if rtype == "DocumentReference" else item
                decoded = attachment_text(att, 20000)
                if decoded:
                    text, ctype = decoded
                    source = attachment_source_type(att) or "inline"
                    lines.append(f"{res.id}: {ctype} from {source}: {' '.join(text.split())}")
                else:
                    lines.append(f"{res.id}: unreadable {attachment_unreadable(att)}")
    return [
        Card(
            summary="attachments", indicator="info", detail="\n".join(sorted(lines)), source=Source(label="t")
        )
    ]


def make_app(**overrides: Any):
    service = Service(
        id="docs",
        hook="patient-view",
        title="docs",
        description="lists attachments",
        prefetch={"reports": "DiagnosticReport?patient={{context.patientId}}"},
        handler=listing,
        relevant=lambda raw: raw.get("id") != "unwanted",
    )
    return create_app(settings(**overrides), services=[service])


def report(rid: str, *attachments: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": {"versionId": version},
        "status": "final",
        "code": {"text": "EMG/NCS"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-01-01",
        "presentedForm": list(attachments),
    }


def call(client, *reports: dict[str, Any], token: str | None = TOKEN, fhir: str | None = FHIR):
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in reports]}
    extra: dict[str, Any] = {}
    if fhir:
        extra["fhirServer"] = fhir
    if token:
        extra["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        }
    r = post(client, "docs", pv_request({"reports": bundle}, **extra))
    assert r.status_code == 200, r.get_json()
    return r.get_json()["cards"][0]["detail"]


def inline(content_type: str, data: bytes) -> dict[str, Any]:
    return {"contentType": content_type, "data": base64.b64encode(data).decode()}


# -- fetched by url ------------------------------------------------------------------------------------


@responses.activate
def test_relative_binary_url_is_fetched_with_token_and_native_accept_and_read():
    responses.get(f"{FHIR}/Binary/b1", body=pdf_report(REPORT, pages=2), content_type="application/pdf")
    detail = call(
        make_app().test_client(), report("r1", {"contentType": "application/pdf", "url": "Binary/b1"})
    )
    assert detail.startswith("r1: text/plain from application/pdf: ELECTRODIAGNOSTIC CONSULTATION")
    assert "left L5 radiculopathy with active denervation" in detail
    (sent,) = responses.calls
    assert sent.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.request.headers["Accept"].startswith("application/pdf")
    assert "application/fhir+json" in sent.request.headers["Accept"]


@responses.activate
def test_fhir_binary_json_form_is_decoded_and_absolute_same_origin_url_accepted():
    binary = {
        "resourceType": "Binary",
        "contentType": "text/rtf",
        "data": base64.b64encode(rtf_report(REPORT)).decode(),
    }
    responses.get(f"{FHIR}/Binary/b2", json=binary, content_type="application/fhir+json")
    detail = call(
        make_app().test_client(), report("r1", {"contentType": "text/rtf", "url": f"{FHIR}/Binary/b2"})
    )
    assert detail.startswith("r1: text/plain from text/rtf: ELECTRODIAGNOSTIC")
    assert "left L5 radiculopathy" in detail


@responses.activate
def test_html_binary_stays_markup_for_the_emg_reader_and_charsets_become_utf8():
    responses.get(f"{FHIR}/Binary/h", body=html_report(REPORT).encode("cp1252"), content_type="text/html")
    latin = REPORT.replace("EMG:", "EMG (Dr. Müller):").encode("latin-1")
    responses.get(f"{FHIR}/Binary/t", body=latin, content_type="text/plain; charset=ISO-8859-1")
    detail = call(
        make_app().test_client(),
        report("r1", {"contentType": "text/html", "url": "Binary/h"}),
        report("r2", {"contentType": "text/plain", "url": "Binary/t"}),
    )
    assert "r1: text/html from text/html: <!DOCTYPE html>" in detail
    assert "r2: text/plain from text/plain: ELECTRODIAGNOSTIC CONSULTATION NEEDLE EMG (Dr. Müller)" in detail


@responses.activate
def test_foreign_host_url_is_refused_and_nothing_is_fetched(capsys):
    responses.get("https://attacker.example.net/Binary/x", body=b"never")
    detail = call(
        make_app().test_client(),
        report("r1", {"contentType": "application/pdf", "url": "https://attacker.example.net/Binary/x"}),
    )
    assert detail == "r1: unreadable foreign-host"
    assert len(responses.calls) == 0
    out = capsys.readouterr().out
    assert '"event":"attachment.refused"' in out and "attacker" not in out and TOKEN not in out


@responses.activate
def test_binary_404_and_oversized_attachment_answer_with_a_reason_not_an_error():
    responses.get(f"{FHIR}/Binary/gone", status=404, json={"resourceType": "OperationOutcome"})
    responses.get(f"{FHIR}/Binary/big", body=b"%PDF-1.7\n" + b"0" * 300_000, content_type="application/pdf")
    detail = call(
        make_app(attachment_max_bytes=200_000).test_client(),
        report("r1", {"contentType": "application/pdf", "url": "Binary/gone"}),
        report("r2", {"contentType": "application/pdf", "url": "Binary/big"}),
    )
    assert detail == "r1: unreadable not-found\nr2: unreadable too-large"
    assert attachment_missing("not-found") and not attachment_missing("too-large")


@responses.activate
def test_only_attachments_of_kept_resources_are_fetched():
    responses.get(f"{FHIR}/Binary/b1", body=REPORT.encode(), content_type="text/plain")
    responses.get(f"{FHIR}/Binary/b2", body=REPORT.encode(), content_type="text/plain")
    call(
        make_app().test_client(),
        report("r1", {"contentType": "text/plain", "url": "Binary/b1"}),
        report("unwanted", {"contentType": "text/plain", "url": "Binary/b2"}),
    )
    assert [c.request.url for c in responses.calls] == [f"{FHIR}/Binary/b1"]


@responses.activate
def test_attachments_per_call_are_capped_newest_first():
    for i in range(4):
        responses.get(f"{FHIR}/Binary/b{i}", body=REPORT.encode(), content_type="text/plain")
    reports = [report(f"r{i}", {"contentType": "text/plain", "url": f"Binary/b{i}"}) for i in range(4)]
    for i, rep in enumerate(reports):
        rep["effectiveDateTime"] = f"2025-0{i + 1}-01"
    detail = call(make_app(attachment_max_count=2).test_client(), *reports)
    assert sorted(c.request.url for c in responses.calls) == [f"{FHIR}/Binary/b2", f"{FHIR}/Binary/b3"]
    assert "r0: unreadable over-count" in detail and "r1: unreadable over-count" in detail


@responses.activate
def test_cache_is_keyed_by_url_resource_version_and_token():
    responses.get(f"{FHIR}/Binary/b1", body=pdf_report(REPORT), content_type="application/pdf")
    client = make_app().test_client()
    att = {"contentType": "application/pdf", "url": "Binary/b1"}
    first = call(client, report("r1", att))
    assert call(client, report("r1", att)) == first
    assert len(responses.calls) == 1, "same URL, version and token: read from the worker's cache"
    call(client, report("r1", att, version="2"))
    assert len(responses.calls) == 2, "a new version of the report is fetched again"
    call(client, report("r1", att, version="2"), token="another-users-token")
    assert len(responses.calls) == 3, "another caller's token never reads what this token fetched"


def test_relative_url_without_fhir_server_is_marked_not_fatal():
    detail = call(
        make_app().test_client(),
        report("r1", {"contentType": "application/pdf", "url": "Binary/1"}),
        fhir=None,
        token=None,
    )
    assert detail == "r1: unreadable no-fhir-server"


@responses.activate
def test_slow_binary_past_the_deadline_gives_cards_from_what_arrived():
    def slow(request):
        time.sleep(1.5)
        return 200, {"Content-Type": "text/plain"}, REPORT

    responses.add_callback(responses.GET, f"{FHIR}/Binary/slow", callback=slow)
    responses.get(f"{FHIR}/Binary/fast", body=REPORT.encode(), content_type="text/plain")
    started = time.perf_counter()
    detail = call(
        make_app(fhir_deadline_s=0.5).test_client(),
        report("r1", {"contentType": "text/plain", "url": "Binary/slow"}),
        report("r2", {"contentType": "text/plain", "url": "Binary/fast"}),
    )
    assert time.perf_counter() - started < 1.2
    assert (
        "r1: unreadable timeout" in detail and "r2: text/plain from text/plain: ELECTRODIAGNOSTIC" in detail
    )
    time.sleep(1.2)  # the mocked transport has no socket to cut: let the late request finish here


# -- inline content --------------------------------------------------------------------------------------


def test_inline_files_are_read_and_unreadable_ones_marked_with_their_reason(capsys):
    detail = call(
        make_app().test_client(),
        report("pdf", inline("application/pdf", pdf_report(REPORT))),
        report("rtf", inline("application/rtf", rtf_report(REPORT))),
        report("scan", inline("application/pdf", scanned_pdf_report(REPORT))),
        report("locked", inline("application/pdf", pdf_report(REPORT, user_password="secret"))),
        report("cut", inline("application/pdf", truncated(pdf_report(REPORT)))),
        report("cutrtf", inline("text/rtf", truncated(rtf_report(REPORT)))),
        report("photo", inline("image/png", b"\x89PNG\r\n\x1a\n....")),
        report("bomb", inline("application/pdf", pdf_bomb(200))),
        report("utf8", inline("text/plain", REPORT.encode())),
        token=None,
        fhir=None,
    )
    lines = dict(line.split(": ", 1) for line in detail.split("\n"))
    assert lines["pdf"].startswith("text/plain from application/pdf: ELECTRODIAGNOSTIC")
    assert lines["rtf"].startswith("text/plain from application/rtf: ELECTRODIAGNOSTIC")
    assert lines["utf8"].startswith("text/plain from inline: ELECTRODIAGNOSTIC")  # left exactly as sent
    assert lines["scan"] == "unreadable no-text-layer"
    assert lines["locked"] == "unreadable encrypted"
    assert lines["cut"] == "unreadable corrupt"
    assert lines["cutrtf"] == "unreadable truncated"
    assert lines["photo"] == "unreadable unsupported-type"
    assert lines["bomb"] == "unreadable too-complex"
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"evidence_unreadable"' in x]
    assert sorted(e["reason"] for e in events) == sorted(
        ["no-text-layer", "encrypted", "corrupt", "truncated", "unsupported-type", "too-complex"]
    )


def test_unreadable_attachment_keeps_no_data_and_carries_the_reason_extension():
    app = make_app()
    engine = app.extensions["cds"].engine
    rep = report("r1", inline("application/pdf", scanned_pdf_report(REPORT)))
    raws, stats = engine.attachments.normalize(
        [rep], keep=lambda raw: True, fhir_server=None, token=None, deadline=Deadline(1.0)
    )
    att = raws[0]["presentedForm"][0]
    assert "data" not in att and att["contentType"] == "application/pdf"
    assert att["extension"] == [{"url": UNREADABLE_URL, "valueCode": "no-text-layer"}]
    assert "data" in rep["presentedForm"][0], "the request's JSON is not modified"
    assert stats["unreadable"] == 1
    raws, _ = engine.attachments.normalize(
        [report("r2", inline("application/pdf", pdf_report(REPORT)))],
        keep=lambda raw: True,
        fhir_server=None,
        token=None,
        deadline=Deadline(1.0),
    )
    att = raws[0]["presentedForm"][0]
    assert att["contentType"] == "text/plain; charset=utf-8"
    assert att["extension"] == [{"url": SOURCE_TYPE_URL, "valueCode": "application/pdf"}]
    assert "IMPRESSION" in base64.b64decode(att["data"]).decode()


# -- bounded readers ---------------------------------------------------------------------------------------


def test_large_rtf_is_bounded_in_size_and_time():
    rtf = rtf_report(REPORT)
    picture = b"{\\pict\\pngblip " + b"89abcdef" * (4 * 1024 * 1024 // 8) + b"}"
    body = rtf.rstrip()[:-1] + picture + b"\\par IMPRESSION: end\\par}"
    text = read_document(body, "text/rtf", Limits(max_bytes=8 * 1024 * 1024)).text
    assert "left L5 radiculopathy" in text and "89abcdef" not in text  # picture data never reaches striprtf
    with pytest.raises(Unreadable) as exc:
        read_document(b"{\\rtf1 " + b"x" * (50 * 1024 * 1024) + b"}", "text/rtf", Limits())
    assert exc.value.reason == "too-large"
