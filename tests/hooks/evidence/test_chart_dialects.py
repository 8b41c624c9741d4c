"""Documentation patterns the third blind batch found (issue 11): each is a general rule, tested on its own.

Every test states the pattern in a chart's own words and checks the concept the builder reads from it.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.hooks.factories import (
    ICD,
    TODAY,
    build,
    builder,
    condition,
    day_of,
    days_ago,
    document,
    mri_code,
    narratives,
    observation,
    report,
)


def note(text: str, ago: int = 0):
    return document(text, kind="Clinic note", when=days_ago(ago))


# -- an addendum that withdraws the original EMG reading ---------------------------------------------------


def test_an_emg_impression_withdrawn_by_its_addendum_is_not_positive():
    amended = (
        "REVISED IMPRESSION: Normal study. No electrodiagnostic evidence of a right lumbosacral "
        "radiculopathy.\n"
        "Reason for amendment: the discharges labelled fibrillation potentials are end-plate spikes, not "
        'fibrillation potentials. The original impression of 01/25/2026 ("Right L5 radiculopathy with active '
        'denervation") is withdrawn.'
    )
    assert build(report(conclusion=amended, status="amended")).emg is None


def test_an_emg_impression_that_stands_is_still_positive():
    text = "IMPRESSION: Right L5 radiculopathy with active denervation (fibrillations in tibialis anterior)."
    assert build(report(conclusion=text)).emg is not None


# -- text copied forward from an older note ----------------------------------------------------------------


def test_copied_forward_text_is_dated_as_the_note_it_came_from():
    text = (
        "CC: F/U LEFT LEG PAIN.\n"
        "*** THE FOLLOWING WAS COPIED FROM NOTE DATED NOV 20, 2025 ***\n"
        "HPI: SEEN IN ED WITH ACUTE URINARY RETENTION. BLADDER SCAN 960 ML, FOLEY PLACED.\n"
        "*** END OF COPIED TEXT ***\n"
        "INTERVAL HISTORY: VOIDING WELL. NO INCONTINENCE."
    )
    [today, copied] = narratives(note(text))
    assert "RETENTION" not in today.prose and "VOIDING WELL" in today.prose
    assert copied.when == date(2025, 11, 20) and "RETENTION" in copied.prose
    assert build(note(text)).red_flags == []  # 100 days old: outside the 30-day window


def test_copied_text_without_a_readable_date_is_dropped():
    text = "Plan: PT.\n*** copied from note dated last spring ***\nUrinary retention.\n\nToday: voiding well."
    [only] = narratives(note(text))
    assert "retention" not in only.prose.lower()


# -- evidence of the other side is another problem ---------------------------------------------------------


def test_a_foot_drop_on_the_other_side_does_not_start_this_episode():
    emg = report(conclusion="Left L5 radiculopathy with fibrillation potentials in left tibialis anterior.")
    old = note("62 yo with R foot drop x 2 days after kneeling.", ago=160)
    current = note("Left leg pain since " + day_of(35).strftime("%m/%d/%Y") + ".", ago=0)
    evidence = build(emg, old, current)
    assert evidence.episode.onset == day_of(35)


def test_evidence_of_the_same_side_still_joins_the_episode():
    emg = report(conclusion="Left L5 radiculopathy with fibrillation potentials in left tibialis anterior.")
    earlier = note("Left leg pain x 2 weeks.", ago=60)
    current = note("Left leg pain, worse.", ago=0)
    assert (TODAY - build(emg, earlier, current).episode.onset).days == 74


# -- dates and fractions -----------------------------------------------------------------------------------


def test_a_fraction_is_not_a_date():
    [span] = builder().episodes.stated_onsets(
        narratives(note("Right leg pain that began 3 1/2 weeks ago (around Feb 5)."))
    )
    assert span.start == date(2026, 2, 5)


# -- polyneuropathy is not radiculopathy ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Burning and numbness of both feet to the ankles, worse at night.",
        "Stocking loss of pinprick to mid-shin bilaterally, symmetric.",
        "Ankle jerks absent, knee jerks 2+.",
    ],
)
def test_length_dependent_findings_are_not_radicular(text):
    evidence = build(note(text))
    assert evidence.diagnoses.radicular_symptoms == []
    assert evidence.motor.new_deficits == []


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("Left ankle jerk absent.", "reflex change"),
        ("Decreased pinprick over the dorsum of the left foot.", "dermatomal sensory loss"),
    ],
)
def test_one_sided_findings_still_count(text, what):
    assert [e.what for e in build(note(text)).motor.new_deficits] == [what]


# -- flowsheets, questionnaires and return instructions ----------------------------------------------------


def test_a_flowsheet_row_written_as_question_and_coded_answer_is_read():
    component = {"code": {"text": "Perineal/Saddle Sensation"}, "valueCodeableConcept": {"text": "Decreased"}}
    row = observation("Neuro Assessment", components=[component], when=days_ago(5))
    [flag] = build(row).red_flags
    assert (
        flag.what == "saddle or perineal sensory loss"
        and flag.text == "Perineal/Saddle Sensation: Decreased."
    )


@pytest.mark.parametrize(
    "question",
    [
        "Since your back pain started, have you had a bowel accident (you could not hold it)?",
        "NEW INABILITY TO VOID",
    ],
)
def test_form_questions_in_plain_words_are_red_flag_questions(question):
    row = observation(question, valueBoolean=True, when=days_ago(3), category="survey")
    assert len(build(row).red_flags) == 1


def test_return_instructions_with_a_time_are_not_findings():
    text = "Return in 6 weeks or sooner for worsening weakness, numbness in groin, or bladder/bowel changes."
    evidence = build(note(text))
    assert evidence.red_flags == [] and evidence.motor.severe == []


def test_an_inactive_problems_section_documents_nothing_current():
    text = "INACTIVE/RESOLVED PROBLEMS:\n 1. FOOT DROP, RIGHT - RESOLVED NOV 30, 2025\n\nS: LEFT LEG PAIN."
    assert build(note(text)).motor.severe == []


# -- diagnoses written the way EHRs write them -------------------------------------------------------------


def test_a_radiculopathy_written_only_in_words_is_read_with_the_icd_code_it_means():
    entry = condition(
        "6713045",
        system="https://fhir.example.org/nomenclature",
        text="Lumbar radiculopathy, left L5",
        onset=days_ago(80),
    )
    [dx] = build(entry).diagnoses.radiculopathy
    assert (dx.code, dx.display) == ("M54.16", "Radiculopathy, lumbar region")


def test_a_coded_entry_offers_its_icd10cm_code_before_snomed():
    entry = condition("311211000119105", system="snomed", text="Lumbar disc herniation with radiculopathy")
    entry.code.coding.append(type(entry.code.coding[0])(system=ICD, code="M51.16"))
    [dx] = build(entry).diagnoses.radiculopathy
    assert dx.code == "M51.16"


def test_radicular_words_in_an_old_note_are_still_read_but_dated():
    [symptom] = build(note("Pain radiating down the left leg.", ago=100)).diagnoses.radicular_symptoms
    assert symptom.when == day_of(100)


# -- MRI findings the impression leaves out ----------------------------------------------------------------


def test_a_root_contact_in_the_findings_counts_with_its_level_heading():
    text = (
        "FINDINGS: L3-L4: Mild disc bulge. No stenosis.\n"
        "L4-L5: Disc desiccation. Left paracentral disc protrusion which contacts and posteriorly displaces "
        "the traversing left L5 nerve root in the lateral recess.\n"
        "L5-S1: No disc herniation.\n"
        "IMPRESSION: 1. Multilevel lumbar spondylosis, most advanced at L4-5. 2. No high-grade stenosis."
    )
    [mri] = build(report(code=mri_code(), text=text, when=days_ago(20))).imaging.mri
    assert mri.compressive and mri.disc_levels == ("lumbar",)


def test_a_bulge_in_the_findings_is_not_a_compressive_lesion():
    text = (
        "FINDINGS: L4-L5: Mild disc bulge and facet hypertrophy. Mild foraminal narrowing.\n"
        "IMPRESSION: Mild multilevel spondylosis."
    )
    [mri] = build(report(code=mri_code(), text=text, when=days_ago(20))).imaging.mri
    assert not mri.compressive


def test_ros_neg_for_is_a_negation():
    assert build(note("ROS: neg for weakness, numbness.")).motor.new_deficits == []


def test_an_addendum_at_the_end_of_a_long_note_is_read():
    filler = "Home log: walked 20 minutes, pain 4/10, slept well. " * 500  # ~26,000 characters
    text = filler + "\nADDENDUM: unable to void since arrival; bladder scan 890 mL, straight cath 850 mL."
    assert [f.what for f in build(note(text)).red_flags][:1] == ["urinary retention"]


# -- batch 4 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("cuando me limpio despues de ir al baño no siento nada", "saddle or perineal sensory loss"),
        ("anoche me orine en la cama sin darme cuenta", "new bowel or bladder incontinence"),
        ("desde ayer no puedo orinar", "urinary retention"),
    ],
)
def test_patients_words_in_spanish_are_read(text, what):
    assert what in [f.what for f in build(note(text, ago=1)).red_flags]


@pytest.mark.parametrize(
    "text",
    [
        "SPT in place since 03/2021 for urinary retention due to urethral stricture.",
        "Neurogenic bladder with chronic urinary retention, performs CIC four times daily.",
        "Neg saddle numbness. ROS neg b/b.",
    ],
)
def test_long_standing_retention_and_neg_answers_are_not_red_flags(text):
    assert build(note(text, ago=1)).red_flags == []


def test_an_injection_a_note_says_was_done_counts_with_its_own_date():
    done = note("Pain clinic follow-up: s/p left L5-S1 TFESI 12/12/2025 with 50% relief for 3 weeks.", ago=5)
    [esi] = build(done).care.esi
    assert esi.when == date(2025, 12, 12)
    planned = note("Discussed a transforaminal epidural steroid injection; she will think about it.", ago=5)
    assert build(planned).care.esi == []


def test_a_note_that_says_the_radiculopathy_persists_keeps_the_episode_going():
    emg = report(conclusion="Chronic left L5 radiculopathy with reinnervation in left tibialis anterior.")
    first = condition("M54.17", text="Left L5 radiculopathy", onset=days_ago(300))
    later = note("Persistent numbness dorsum left foot; chronic left L5 radiculopathy.", ago=3)
    assert build(emg, first, later).episode.onset == day_of(300)
    # without such a note, a gap of more than 180 days starts a new episode
    quiet = note("Left leg pain, worse with standing.", ago=3)
    assert build(emg, first, quiet).episode.onset != day_of(300)


def test_ocr_digits_inside_words_are_read_as_letters():
    text = "IMPRESSI0N: chronic left L5 radicu1opathy with chronic reinnervation in the G1uteus medius."
    assert build(report(conclusion=text)).emg is not None


def test_a_negated_continuity_word_does_not_keep_the_episode_going():
    emg = report(conclusion="Chronic left L5 radiculopathy with reinnervation in left tibialis anterior.")
    first = condition("M54.17", text="Left L5 radiculopathy", onset=days_ago(300))
    resolved = note("No residual numbness; no persistent leg pain.", ago=3)
    assert build(emg, first, resolved).episode.onset != day_of(300)


def test_a_copied_block_runs_to_its_end_marker_across_blank_lines():
    text = (
        "*** THE FOLLOWING WAS COPIED FROM NOTE DATED NOV 20, 2025 ***\n"
        "HPI: acute urinary retention, Foley placed.\n\n"
        "Exam: bladder scan 960 mL.\n"
        "*** END OF COPIED TEXT ***\n"
        "Today: voiding well."
    )
    [today, copied] = narratives(note(text))
    assert "960" not in today.prose and "960" in copied.prose
