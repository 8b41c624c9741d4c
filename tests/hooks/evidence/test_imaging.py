"""hooks/evidence/imaging.py: lumbar and plexus MRI reports wherever they are filed, and pending MRI orders.

`qualifying(since)` is the one definition of "an MRI that counts" for patient-view and order-select.
"""

from __future__ import annotations

import pytest

from tests.hooks.factories import (
    builder,
    chart,
    condition,
    day_of,
    days_ago,
    document,
    hook_input,
    mri_code,
    order,
    report,
)

IMPRESSION = (
    "FINDINGS: Multilevel degenerative change.\n"
    "IMPRESSION: L4-5 left paracentral disc extrusion compressing the traversing left L5 nerve root."
)


def imaging(*resources, drafts=()):
    return builder().imaging.read(chart(*resources), list(drafts))


def studies(*resources) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    return [(m.evidence.ref, m.evidence.label, m.compressive, m.disc_levels) for m in imaging(*resources).mri]


def mri_report(conclusion: str | None = None, **kw):
    return report(code=mri_code(), conclusion=conclusion, **kw)


# -- reports -------------------------------------------------------------------------------------------------


def test_diagnostic_report_with_a_compressive_disc_lesion():
    found = imaging(mri_report(text=IMPRESSION, id="m1", when=days_ago(20))).mri
    assert [(m.evidence.ref, m.evidence.when, m.compressive, m.plexus) for m in found] == [
        ("DiagnosticReport/m1", day_of(20), True, False)
    ]
    assert "disc extrusion" in found[0].evidence.text  # the card quotes the impression's finding


@pytest.mark.parametrize(
    ("conclusion", "levels"),
    [
        ("L4-5 left paracentral disc extrusion compressing the traversing L5 root.", ("lumbar",)),
        ("L5-S1 right foraminal disc protrusion impinging the exiting L5 root.", ("lumbosacral",)),
        ("Disc herniation compressing the left L5 root.", ("unspecified",)),
        ("Severe central canal stenosis at L4-5 from facet hypertrophy.", ()),
    ],
)
def test_disc_level_of_a_compressive_lesion(conclusion, levels):
    [(_, _, compressive, disc_levels)] = studies(mri_report(conclusion, id="m1"))
    assert compressive and disc_levels == levels


@pytest.mark.parametrize(
    "conclusion",
    [
        "No disc herniation, stenosis or nerve root compression. Normal lumbar spine MRI.",
        "Mild degenerative disc disease without stenosis.",
        "IMPRESSION: No disc herniation. No canal stenosis.",
    ],
)
def test_normal_or_negated_findings_are_not_compressive(conclusion):
    assert studies(mri_report(conclusion, id="m1")) == [
        ("DiagnosticReport/m1", "Lumbar spine MRI", False, ())
    ]


def test_plexus_mri_is_a_study_but_never_a_qualifying_lumbar_mri():
    found = imaging(
        report(
            code=mri_code("72197", "MRI pelvis (lumbosacral plexus)"), conclusion="Normal plexus.", id="p1"
        )
    )
    assert [(m.evidence.label, m.plexus) for m in found.mri] == [("Plexus MRI", True)]
    assert found.qualifying(day_of(365)) == []


def test_not_an_mri_or_not_yet_reported_is_not_a_study():
    ct = report(code={"text": "CT lumbar spine"}, conclusion=IMPRESSION, id="ct")
    registered = mri_report(IMPRESSION, id="m1", status="registered")
    withdrawn = mri_report(IMPRESSION, id="m2", status="entered-in-error")
    assert imaging(ct, registered, withdrawn).mri == []


def test_mri_named_only_in_the_report_text_of_a_local_code():
    local = report(
        code={"coding": [{"system": "urn:local", "code": "RAD77"}], "text": "MR L-spine w/o contrast"},
        conclusion=IMPRESSION,
        id="m1",
    )
    assert studies(local)[0][0] == "DiagnosticReport/m1"


# -- DocumentReference: outside and scanned reports ----------------------------------------------------------


def test_mri_report_filed_as_a_document_by_its_heading():
    doc = document("MRI LUMBAR SPINE WITHOUT CONTRAST\n" + IMPRESSION, kind="Outside records", id="d1")
    assert studies(doc) == [("DocumentReference/d1", "Lumbar spine MRI", True, ("lumbar",))]


def test_mri_report_filed_as_a_document_by_its_title():
    assert (
        studies(document(IMPRESSION, kind="Outside MRI lumbar spine report", id="d1"))[0][0]
        == "DocumentReference/d1"
    )


def test_an_ordinary_note_that_mentions_an_mri_is_not_a_report():
    note = document("Assessment: radiculopathy. Plan: order MRI of the lumbar spine.", kind="Progress note")
    assert imaging(note).mri == []


def test_scanned_report_is_dated_by_its_exam_date_not_its_scan_date():
    doc = document(
        "OUTSIDE MRI LUMBAR SPINE\nDate of exam: 01/05/2026\n" + IMPRESSION,
        kind="Scanned document",
        id="d1",
        when=days_ago(1),
    )
    [found] = imaging(doc).mri
    assert found.evidence.when.isoformat() == "2026-01-05"


def test_scanned_report_without_text_is_read_from_its_description():
    doc = document(
        None,
        kind="Scanned document",
        description="MRI lumbar spine: L4-5 disc extrusion compressing L5",
        attachment={"contentType": "application/pdf", "url": "Binary/scan1"},
        id="d1",
    )
    assert studies(doc) == [("DocumentReference/d1", "Lumbar spine MRI", True, ("lumbar",))]


# -- orders --------------------------------------------------------------------------------------------------


def test_active_and_draft_orders_are_pending_a_completed_order_is_neither_pending_nor_a_report():
    found = imaging(order("72148", status="active", id="a1"), order("72148", status="completed", id="c1"))
    assert [p.ref for p in found.pending] == ["ServiceRequest/a1"]
    assert found.mri == []
    assert [p.ref for p in imaging(drafts=[order("72158", status="draft", id="d1")]).pending] == [
        "ServiceRequest/d1"
    ]


def test_orders_for_other_studies_are_not_pending_mri():
    assert imaging(order("72100", status="active"), order("95886", status="draft")).pending == []


# -- which MRI counts ----------------------------------------------------------------------------------------


def test_qualifying_mri_is_on_or_after_the_given_day_newest_first():
    old = mri_report(IMPRESSION, id="old", when=days_ago(100))
    new = mri_report(IMPRESSION, id="new", when=days_ago(10))
    found = imaging(old, new)
    assert [m.evidence.ref for m in found.mri] == ["DiagnosticReport/new", "DiagnosticReport/old"]
    assert [m.evidence.ref for m in found.qualifying(day_of(50))] == ["DiagnosticReport/new"]
    assert [m.evidence.ref for m in found.qualifying(day_of(100))] == [
        "DiagnosticReport/new",
        "DiagnosticReport/old",
    ]


def test_evidence_mri_window_is_the_episode_onset_within_the_lookback():
    """PatientEvidence.mri_since: an MRI from before this episode does not count, nor one over a year old."""
    b = builder()
    before_episode = [
        mri_report(IMPRESSION, id="m1", when=days_ago(40)),
        condition("M54.17", text="Lumbosacral radiculopathy", onset=days_ago(20)),
    ]
    evidence = b.build(hook_input(*before_episode))
    assert evidence.mri_since == day_of(20)
    assert evidence.qualifying_mri() == []
    within = b.build(hook_input(mri_report(IMPRESSION, id="m2", when=days_ago(10)), *before_episode[1:]))
    assert [m.evidence.ref for m in within.qualifying_mri()] == ["DiagnosticReport/m2"]
    no_onset = b.build(
        hook_input(mri_report(IMPRESSION, id="m3", when=days_ago(b.windows.imaging_lookback + 5)))
    )
    assert no_onset.qualifying_mri() == []
