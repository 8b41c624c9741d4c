"""hooks/evidence/edx_reports.py: which documents are EMG/NCS reports, which one decides, what it says.

Rule A fires on the newest *relevant* study: a lower-limb or lumbosacral EDX study, final and signed, read
to its (possibly revised) impression wherever the EHR put it.
"""

from __future__ import annotations

from cds.attachments import UNREADABLE_URL
from tests.hooks.factories import (
    CPT,
    TODAY,
    V2_0074,
    builder,
    chart,
    day_of,
    days_ago,
    document,
    emg_code,
    observation,
    procedure,
    report,
)

POSITIVE = (
    "IMPRESSION: Left L5 radiculopathy with active denervation "
    "(fibrillation potentials in tibialis anterior)."
)
NEGATIVE = "IMPRESSION: Normal study. No electrodiagnostic evidence of lumbosacral radiculopathy."
LOOKBACK = 365


def edx(*resources):
    return builder().edx.read(chart(*resources))


def deciding(*resources) -> str | None:
    """The reference of the positive study that would drive Rule A, or None."""
    found = edx(*resources).positive(TODAY, LOOKBACK)
    return found.evidence.ref if found else None


def readings(*resources) -> list[tuple[str, bool]]:
    return [(r.evidence.ref, r.finding.positive) for r in edx(*resources).readings]


# -- the impression, wherever it is --------------------------------------------------------------------------


def test_positive_conclusion_decides_and_is_quoted():
    found = edx(report(conclusion=POSITIVE, id="r1", when=days_ago(10))).positive(TODAY, LOOKBACK)
    assert found is not None and found.evidence.ref == "DiagnosticReport/r1"
    assert found.evidence.when == day_of(10) and found.evidence.label == "EMG/NCS report"
    assert "L5 radiculopathy" in found.evidence.text
    assert found.finding.laterality == "left" and found.coded


def test_negative_conclusion_is_a_reading_that_does_not_fire():
    assert readings(report(conclusion=NEGATIVE, id="r1")) == [("DiagnosticReport/r1", False)]
    assert deciding(report(conclusion=NEGATIVE, id="r1")) is None


def test_impression_in_the_presented_report_text():
    text = "EMG/NCS REPORT\nINDICATION: r/o left L5 radiculopathy.\nFINDINGS: fibs in TA.\n" + POSITIVE
    assert deciding(report(text=text, id="r1")) == "DiagnosticReport/r1"
    indication_only = (
        "EMG/NCS REPORT\nINDICATION: left L5 radiculopathy with denervation?\nIMPRESSION: Normal study."
    )
    assert deciding(report(text=indication_only, id="r2")) is None


def test_impression_in_result_observations_and_contained_results():
    impression = "Left L5 radiculopathy with active denervation."
    by_reference = [
        report(results=["Observation/o2"], id="r1"),
        observation("EMG interpretation", valueString=impression, id="o2"),
    ]
    contained = report(
        results=["#c1"],
        contained=[
            {
                "resourceType": "Observation",
                "id": "c1",
                "status": "final",
                "code": {"text": "Impression"},
                "valueString": impression,
            }
        ],
        id="r2",
    )
    assert deciding(*by_reference) == "DiagnosticReport/r1"
    assert readings(*by_reference) == [("DiagnosticReport/r1", True)]  # the result row is not a second study
    assert deciding(contained) == "DiagnosticReport/r2"


def test_stand_alone_impression_observation_is_a_study():
    obs = observation(
        "EMG impression",
        valueString="Left L5 radiculopathy with active denervation.",
        id="o1",
        when=days_ago(7),
    )
    assert deciding(obs) == "Observation/o1"
    assert edx(obs).readings[0].evidence.label == "EMG/NCS impression"
    prelim = observation(
        "EMG impression", valueString="Left L5 radiculopathy with active denervation.", status="preliminary"
    )
    assert deciding(prelim) is None


def test_long_html_report_is_read_to_its_impression():
    """A vendor HTML report: ~145 KB of markup around 1 KB of text; markup is stripped before the text cap."""
    style = "font-family:Arial;color:#333;margin:0;padding:0;border:0;" * 6
    rows = "".join(f"<div style='{style}'><span style='{style}'>Row {i}</span></div>" for i in range(200))
    html = (
        f"<html><body><h1>EMG/NCS REPORT</h1>{rows}<h2>IMPRESSION</h2>"
        "<p>Left L5 radiculopathy with active denervation.</p></body></html>"
    )
    assert len(html) > 140_000
    assert deciding(report(text=html, content_type="text/html", id="r1")) == "DiagnosticReport/r1"


def test_report_filed_as_a_note_is_read_when_structured_like_a_report():
    text = (
        "EMG/NCS REPORT\nNerve conduction studies: normal peroneal and tibial motor.\n"
        "Needle EMG: fibrillation potentials in left tibialis anterior.\n" + POSITIVE
    )
    assert deciding(document(text, id="d1")) == "DocumentReference/d1"


def test_a_note_that_cites_an_emg_is_not_a_report():
    note = document(
        "Neurology consult. EMG showed left L5 radiculopathy with denervation. Plan: MRI.", id="d1"
    )
    found = edx(note)
    assert found.readings == [] and found.studies == []


# -- which study decides -------------------------------------------------------------------------------------


def test_newest_relevant_study_decides_no_cherry_picking_an_older_positive():
    older_positive = report(conclusion=POSITIVE, id="old", when=days_ago(60))
    newer_negative = report(conclusion=NEGATIVE, id="new", when=days_ago(5))
    assert deciding(older_positive, newer_negative) is None
    assert [ref for ref, _ in readings(older_positive, newer_negative)] == [
        "DiagnosticReport/new",
        "DiagnosticReport/old",
    ]


def test_newer_positive_after_an_older_negative_decides():
    assert (
        deciding(
            report(conclusion=NEGATIVE, id="old", when=days_ago(60)),
            report(conclusion=POSITIVE, id="new", when=days_ago(5)),
        )
        == "DiagnosticReport/new"
    )


def test_a_newer_arm_or_carpal_tunnel_study_is_not_relevant():
    leg = report(conclusion=POSITIVE, id="leg", when=days_ago(60))
    arm = report(
        code=emg_code("EMG/NCS upper extremity"),
        conclusion="IMPRESSION: Moderate right carpal tunnel syndrome.",
        id="arm",
        when=days_ago(5),
    )
    cts_by_text = report(
        code={"text": "Nerve conduction study"},
        text="NCS REPORT\nMedian motor and sensory studies of the right wrist.\n"
        "IMPRESSION: Moderate right carpal tunnel syndrome.",
        id="cts",
        when=days_ago(3),
    )
    assert deciding(leg, arm, cts_by_text) == "DiagnosticReport/leg"
    limbs = {s.evidence.ref: s.limb for s in edx(leg, arm, cts_by_text).studies}
    assert limbs == {
        "DiagnosticReport/leg": "lower",
        "DiagnosticReport/arm": "upper",
        "DiagnosticReport/cts": "upper",
    }


def test_sleep_study_and_eeg_are_not_edx_studies():
    leg = report(conclusion=POSITIVE, id="leg", when=days_ago(60))
    psg = report(
        code={"coding": [{"system": CPT, "code": "95810"}], "text": "Polysomnography with EMG"},
        conclusion="Periodic limb movements; chin and leg EMG normal.",
        id="psg",
        when=days_ago(5),
    )
    eeg = report(code={"text": "EEG with EMG channels"}, conclusion="Normal EEG.", id="eeg", when=days_ago(4))
    found = edx(leg, psg, eeg)
    assert deciding(leg, psg, eeg) == "DiagnosticReport/leg"
    assert [s.evidence.ref for s in found.studies] == ["DiagnosticReport/leg"]


def test_study_outside_the_lookback_does_not_decide():
    assert deciding(report(conclusion=POSITIVE, id="r1", when=days_ago(LOOKBACK + 30))) is None
    assert (
        deciding(report(conclusion=POSITIVE, id="r1", when=days_ago(LOOKBACK - 30))) == "DiagnosticReport/r1"
    )


def test_report_found_by_its_electroneuro_category_with_a_local_code():
    rep = report(
        code={"coding": [{"system": "urn:local", "code": "NEURO7"}], "text": "Neurodiagnostic study, legs"},
        category={"coding": [{"system": V2_0074, "code": "EN"}]},
        conclusion=POSITIVE,
        id="r1",
    )
    assert deciding(rep) == "DiagnosticReport/r1"


# -- status, signature, versions -----------------------------------------------------------------------------


def test_preliminary_or_unsigned_reports_do_not_drive_cards():
    assert deciding(report(conclusion=POSITIVE, id="r1", status="preliminary")) is None
    assert deciding(report(text="*** PRELIMINARY REPORT - NOT SIGNED ***\n" + POSITIVE, id="r2")) is None
    assert deciding(report(text="Awaiting attending signature.\n" + POSITIVE, id="r3")) is None
    assert deciding(document("EMG/NCS REPORT\n" + POSITIVE, id="d1", doc_status="preliminary")) is None
    # still proof that a study was done (the payer's 12-month criterion)
    assert [
        s.evidence.ref for s in edx(report(conclusion=POSITIVE, id="r1", status="preliminary")).studies
    ] == ["DiagnosticReport/r1"]


def test_addendum_that_revises_the_diagnosis_is_read_as_revised():
    text = (
        "EMG/NCS REPORT\n" + POSITIVE + "\n\nADDENDUM: On review, the fibrillation potentials were artifact; "
        "revised impression: normal study, no radiculopathy."
    )
    assert deciding(report(text=text, id="r1", status="amended")) is None
    unrelated = "EMG/NCS REPORT\n" + POSITIVE + "\n\nADDENDUM: Copy sent to the referring physician."
    assert deciding(report(text=unrelated, id="r2", status="amended")) == "DiagnosticReport/r2"


def test_latest_version_of_a_report_counts():
    v1 = report(conclusion=POSITIVE, id="v1", identifier="ACC1", issued="2026-02-01T00:00:00Z")
    v2 = report(
        conclusion=NEGATIVE, id="v2", identifier="ACC1", issued="2026-02-05T00:00:00Z", status="corrected"
    )
    assert readings(v1, v2) == [("DiagnosticReport/v2", False)]
    withdrawn = report(conclusion=POSITIVE, id="v3", status="entered-in-error")
    assert readings(withdrawn) == []


# -- unreadable reports and studies without findings ---------------------------------------------------------


def test_unreadable_newest_report_blocks_older_readings_and_is_named():
    scan = report(
        presented={
            "contentType": "application/pdf",
            "extension": [{"url": UNREADABLE_URL, "valueCode": "no-text-layer"}],
        },
        id="scan",
        when=days_ago(5),
    )
    older = report(conclusion=POSITIVE, id="old", when=days_ago(60))
    found = edx(scan, older)
    assert found.readings == []
    assert [(u.ref, u.what) for u in found.unreadable] == [("DiagnosticReport/scan", "no-text-layer")]


def test_a_never_fetched_report_is_not_called_unreadable():
    missing = report(
        presented={
            "contentType": "application/pdf",
            "extension": [{"url": UNREADABLE_URL, "valueCode": "timeout"}],
        },
        id="r1",
    )
    assert edx(missing).unreadable == []


def test_completed_procedures_prove_a_study_and_say_needle_or_not():
    found = edx(
        procedure("95886", id="p1", when=days_ago(30)), procedure("95910", id="p2", when=days_ago(40))
    )
    assert [(s.evidence.ref, s.needle) for s in found.studies] == [
        ("Procedure/p1", True),
        ("Procedure/p2", False),
    ]
    assert found.readings == []
    assert edx(procedure("95886", status="not-done")).studies == []
