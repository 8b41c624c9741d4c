"""hooks/evidence/red_flags.py: cauda equina red flags, in both directions.

A missed retention is a missed emergency; a false alarm from education text silences every routine card.
Each class of documentation named in knowledge/red_flags.yaml and issue 11 is tested both ways.
"""

from __future__ import annotations

import pytest

from tests.hooks.factories import (
    TODAY,
    build,
    builder,
    chart,
    condition,
    days_ago,
    document,
    observation,
    questionnaire,
    yes_no,
)

RETENTION = "urinary retention"
PVR = "urinary retention (post-void residual)"
SADDLE = "saddle or perineal sensory loss"
TONE = "decreased rectal or anal sphincter tone"
INCONTINENCE = "new bowel or bladder incontinence"
BILATERAL = "progressive bilateral leg weakness"


def flags(*resources) -> list[tuple[str, str]]:
    """(what, quoted text) of every red flag the extractor finds in these resources."""
    b = builder()
    ch = chart(*resources)
    found = b.red_flags.read(ch.conditions(), b.narratives(ch, set()), TODAY, b.windows.red_flag, ch.zone)
    return [(e.what, e.text) for e in found]


def whats(*resources) -> set[str]:
    return {what for what, _ in flags(*resources)}


def note(text: str, **kw):
    return document(text, kind="ED Provider Notes", **kw)


# -- urinary retention and post-void residual ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Bladder scan post-void residual 740 mL.",
        "PVR 450 cc after voiding.",
        "Straight cath returned 900 mL.",
        "Post-void residual: 200 mL",
    ],
)
def test_post_void_residual_of_200_ml_or_more_is_retention(text):
    assert PVR in whats(note(text))


def test_large_residual_written_with_a_thousands_separator_is_retention():
    assert PVR in whats(note("Bladder scan 1,100 mL."))
    assert [text for what, text in flags(note("PVR 1,100 mL, straight cath."))] == [
        "PVR 1,100 mL, straight cath."
    ]


@pytest.mark.parametrize(
    "text", ["Post-void residual 35 mL.", "Bladder scan 150 mL, voiding well.", "PVR 199 mL"]
)
def test_small_post_void_residual_is_not_retention(text):
    assert flags(note(text)) == []


def test_post_void_residual_flowsheet_row_by_quantity():
    assert PVR in whats(observation("Post-void residual", valueQuantity={"value": 450, "unit": "mL"}))
    assert flags(observation("Post-void residual", valueQuantity={"value": 80, "unit": "mL"})) == []


@pytest.mark.parametrize(
    "text",
    [
        "Unable to void since this morning; required straight cath.",
        "Painless urinary retention.",
        "I haven't peed since yesterday.",
        "Not able to urinate since last night.",
        "Could not void this morning.",
        "Cannot void.",
        "I can't pee.",
    ],
)
def test_retention_in_ed_wording_and_patients_words(text):
    assert RETENTION in whats(note(text))


@pytest.mark.parametrize(
    "text",
    [
        "Straight cath for urine specimen, UA sent.",
        "In-and-out cath for clean-catch culture.",
        "Opioid-induced urinary retention.",
        "Urinary retention related to BPH, on tamsulosin.",
    ],
)
def test_catheterisation_for_a_specimen_or_a_benign_cause_is_not_retention(text):
    assert flags(note(text)) == []


# -- saddle / perianal sensory loss --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Decreased pinprick in the perianal region.",
        "Perineal numbness.",
        "Reduced sensation S3-S5 dermatomes bilaterally.",
        "Numbness of the inner thighs and groin.",
        "Decreased perianal sensation.",
        "Perianal sensation decreased.",
        "Perianal sensation absent.",
        "Diminished perineal sensation to pinprick.",
        "Reduced saddle sensation.",
        "No sensation in the saddle area.",
        "No perianal sensation to pinprick.",
    ],
)
def test_perianal_or_saddle_sensory_loss_described_anatomically(text):
    assert SADDLE in whats(note(text))


@pytest.mark.parametrize(
    "text",
    [
        "I can't feel the toilet paper when I wipe.",
        "It feels numb down there.",
        "My back passage feels numb.",
    ],
)
def test_saddle_numbness_in_patients_own_words(text):
    assert SADDLE in whats(note(text))


@pytest.mark.parametrize(
    "text",
    [
        "Denies saddle anesthesia.",
        "Perianal sensation intact to pinprick.",
        "Perineal numbness since the epidural for delivery.",
        "No pinprick deficit in the perianal region.",
        "No sensation changes in the saddle area.",
        "No sensation loss in saddle distribution.",
        "Saddle region, no numbness.",
        # leg findings beside a normal saddle exam, or a groin word in another clause
        "Perianal sensation intact, numbness over the left foot.",
        "Numbness of the left foot, perianal sensation intact.",
        "Saddle sensation normal, decreased sensation L5 dermatome.",
        "Tingling in the foot, groin normal.",
        "Groin strain, numb toes.",
    ],
)
def test_intact_denied_or_procedure_related_saddle_sensation_is_not_a_flag(text):
    assert flags(note(text)) == []


# -- rectal tone ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Rectal exam: decreased rectal tone.",
        "Rectal tone is decreased.",
        "Lax anal sphincter tone.",
        "Absent rectal tone.",
        "No rectal tone.",
        "Rectal tone absent.",
        "Absent anal wink.",
        "No anal wink.",
        "Anal wink is absent on exam.",
        "Absent bulbocavernosus reflex.",
    ],
)
def test_decreased_or_absent_rectal_tone_written_either_way_round(text):
    """'Absent' and 'no' are the finding here, not its negation (issue 11: 'diminished or absent')."""
    assert TONE in whats(note(text))


@pytest.mark.parametrize(
    "text",
    [
        "Rectal tone normal.",
        "Normal rectal tone, no saddle anesthesia.",
        "No loss of rectal tone.",
        "No decreased rectal tone.",
        "No changes in rectal tone.",
        "No anal wink abnormality.",
        "Anal wink present.",
        "Rectal tone is not decreased.",
        # a finding of something else beside a normal tone (exam templates)
        "Decreased ROM, normal rectal tone.",
        "Poor effort, rectal tone intact.",
        "Absent DTRs, normal rectal tone.",
    ],
)
def test_normal_rectal_tone_is_not_a_flag(text):
    assert flags(note(text)) == []


def test_rectal_tone_as_flowsheet_free_text():
    assert TONE in whats(observation("Rectal tone", valueString="decreased"))
    assert flags(observation("Rectal tone", valueString="normal")) == []


# -- incontinence and bilateral weakness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "New bowel incontinence since yesterday.",
        "Wet myself twice this morning without noticing.",
        "Loss of bladder control.",
    ],
)
def test_new_incontinence_in_clinical_and_patients_words(text):
    assert INCONTINENCE in whats(note(text))


@pytest.mark.parametrize("text", ["Stress urinary incontinence.", "Nocturnal enuresis as a child."])
def test_named_benign_incontinence_is_not_a_flag(text):
    assert flags(note(text)) == []


def test_unnoticed_incontinence_is_a_flag_noticing_none_is_not():
    assert INCONTINENCE in whats(note("Did not notice that she had wet herself."))
    assert flags(note("Patient did not notice any urine leakage.")) == []
    assert flags(note("Able to void without difficulty.")) == []


def test_progressive_bilateral_weakness_is_a_flag_but_stable_or_mild_is_not():
    assert BILATERAL in whats(note("Progressive bilateral leg weakness over 3 days."))
    assert BILATERAL in whats(note("Weakness in both legs, getting worse since Monday."))
    assert flags(note("Mild bilateral leg weakness, stable for months.")) == []
    assert flags(note("Bilateral hip flexor weakness 4/5, unchanged from last visit.")) == []


# -- the history of the present illness is current, a past history is not -----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2-day history of urinary retention and saddle numbness.",
        "45M with a 2 day history of urinary retention.",
        "Presents with 1 day hx of urinary retention.",
        "Prior to arrival he was unable to void.",
    ],
)
def test_a_duration_history_or_prior_to_arrival_is_the_present_illness(text):
    assert RETENTION in whats(note(text))


@pytest.mark.parametrize(
    "text",
    [
        "History of urinary retention with BPH, resolved.",
        "Past history of urinary retention in 2019.",
        "Hx of urinary retention.",
        "Remote history of cauda equina syndrome.",
    ],
)
def test_a_past_history_is_not_a_red_flag(text):
    assert flags(note(text)) == []


# -- flowsheets and questionnaires: a question and its answer ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        ({"valueString": "Yes"}, True),
        ({"valueString": "No"}, False),
        ({"valueCodeableConcept": yes_no("yes")}, True),
        ({"valueCodeableConcept": yes_no("no")}, False),
        ({"valueBoolean": True}, True),
        ({"valueBoolean": False}, False),
        ({"dataAbsentReason": {"text": "asked but unknown"}}, False),
    ],
)
def test_flowsheet_answer_decides_in_every_value_type(value, flag):
    found = whats(observation("Urinary retention", **value))
    assert (RETENTION in found) is flag
    assert found <= {RETENTION}


def test_saddle_question_answered_yes_on_a_flowsheet():
    assert whats(observation("Saddle anesthesia", valueBoolean=True)) == {SADDLE}


def test_questionnaire_answers_yes_no_and_unanswered():
    yes = questionnaire([("Any new loss of bladder control?", {"valueBoolean": True})])
    no = questionnaire([("Any new loss of bladder control?", {"valueString": "No"})])
    blank = questionnaire([("Any new loss of bladder control?", None), ("Numbness in the groin?", None)])
    assert whats(yes) == {INCONTINENCE}
    assert flags(no) == [] and flags(blank) == []


@pytest.mark.parametrize(
    "text",
    [
        "SADDLE ANESTHESIA: ___\nURINARY RETENTION: ___",
        "Red flags:\n[ ] urinary retention\n[ ] saddle anesthesia\n[x] back pain",
        "Urinary retention? No. Saddle anesthesia? no.",
        "Bowel/bladder incontinence: denies",
    ],
)
def test_unanswered_boxes_unchecked_items_and_no_answers_are_not_flags(text):
    assert flags(note(text)) == []


@pytest.mark.parametrize(
    "text", ["[x] urinary retention", "Urinary retention: Yes", "Urinary retention? yes."]
)
def test_checked_items_and_yes_answers_in_note_text_are_flags(text):
    assert RETENTION in whats(note(text))


# -- education, precautions, instructions, risks -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Cauda equina precautions reviewed.",
        "Return to the ED if you develop urinary retention or saddle numbness.",
        "Educated on signs of cauda equina syndrome including bowel or bladder incontinence.",
        "Risks include bleeding, infection, incontinence and nerve damage.",
        "Ask about saddle anesthesia and urinary retention at each visit.",
        "Return precautions: loss of bladder control, numbness in the groin.",
        "Low suspicion for cauda equina syndrome.",
    ],
)
def test_education_precautions_instructions_and_risk_lists_are_not_flags(text):
    assert flags(note(text)) == []


def test_an_after_visit_summary_is_not_read_for_flags():
    assert (
        flags(document("Go to the ER if you have loss of bladder control.", kind="After Visit Summary")) == []
    )


def test_a_red_flag_beside_education_text_is_still_found():
    found = whats(
        note("Urinary retention with PVR 650 mL. Cauda equina precautions reviewed with the patient.")
    )
    assert PVR in found or RETENTION in found


# -- coded diagnoses -----------------------------------------------------------------------------------------


def test_cauda_equina_diagnosis_is_a_flag_when_recent_or_undated():
    assert whats(condition("G83.4", text="Cauda equina syndrome", onset=days_ago(3))) == {
        "cauda equina syndrome"
    }
    assert whats(condition("G83.4", text="Cauda equina syndrome")) == {"cauda equina syndrome"}
    assert flags(condition("G83.4", text="Cauda equina syndrome", onset=days_ago(400))) == []
    assert (
        flags(condition("G83.4", text="Cauda equina syndrome", onset=days_ago(3), clinical="resolved")) == []
    )


def test_new_incontinence_code_is_a_flag_only_when_new():
    new = condition("R32", text="Urinary incontinence", onset=days_ago(5))
    assert whats(new) == {"new bladder or bowel dysfunction"}
    assert flags(condition("R32", text="Urinary incontinence", onset=days_ago(400))) == []


def test_chronic_condition_newly_on_the_problem_list_is_not_a_flag():
    in_entry = condition(
        "R32", text="Urinary incontinence", onset=days_ago(5), note="Stress incontinence since childbirth"
    )
    in_note = [
        condition("R32", text="Urinary incontinence", onset=days_ago(5)),
        note("Stress incontinence for many years, unchanged."),
    ]
    assert flags(in_entry) == []
    assert flags(*in_note) == []


def test_anaesthesia_code_needs_a_saddle_site_and_weakness_code_needs_progression():
    assert whats(condition("R20.0", text="Anesthesia of skin, saddle area", onset=days_ago(3))) == {SADDLE}
    assert flags(condition("R20.0", text="Anesthesia of skin", onset=days_ago(3))) == []
    assert whats(condition("M62.81", text="Progressive muscle weakness", onset=days_ago(3))) == {
        "progressive weakness"
    }
    assert flags(condition("M62.81", text="Muscle weakness (generalized)", onset=days_ago(3))) == []


# -- window and evidence -------------------------------------------------------------------------------------


def test_flags_older_than_the_red_flag_window_do_not_count():
    window = builder().windows.red_flag
    assert flags(note("Urinary retention requiring foley.", when=days_ago(window + 5))) == []
    assert RETENTION in whats(note("Urinary retention requiring foley.", when=days_ago(window - 1)))


def test_flag_evidence_names_document_and_quotes_the_sentence():
    evidence = build(note("Exam notable for decreased rectal tone. Plan: MRI.", when=days_ago(2))).red_flags
    assert len(evidence) == 1
    e = evidence[0]
    assert (e.label, e.text, e.what) == ("ED Provider Notes", "Exam notable for decreased rectal tone.", TONE)
    assert e.ref.startswith("DocumentReference/") and (TODAY - e.when).days == 2


# -- known gaps (reported; strict: each fails loudly once fixed, so the mark is removed) ---------------------


@pytest.mark.xfail(strict=True, reason="a residual in litres is not read as a volume (needs unit conversion)")
def test_residual_in_litres_is_retention():
    assert PVR in whats(note("Bladder scan showed 1.1 L."))


@pytest.mark.xfail(strict=True, reason="'s/p' (historical) scopes over the new finding after the injury")
def test_new_retention_after_an_injury_is_a_flag():
    assert RETENTION in whats(note("S/p fall with new urinary retention."))


@pytest.mark.xfail(
    strict=True, reason="narrative.yaml's historical trigger 'history:' also covers an HPI header"
)
def test_a_history_header_of_the_present_illness_is_current():
    assert RETENTION in whats(note("History: urinary retention since this morning."))
