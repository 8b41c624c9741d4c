"""hooks/evidence/narrative.py: notes, flowsheet rows and questionnaires become prose and answers.

Every concept reads the chart through these narratives, so what is a question, what is an answer and what
is education text is decided here once (knowledge/narrative.yaml).
"""

from __future__ import annotations

import pytest

from tests.hooks.factories import (
    builder,
    day_of,
    days_ago,
    document,
    encounter,
    narratives,
    observation,
    questionnaire,
    yes_no,
)

V2_0136 = "http://terminology.hl7.org/CodeSystem/v2-0136"


def reader():
    return builder().reader


def answers(n) -> list[tuple[str, str]]:
    return [(a.question, a.reply) for a in n.answers]


def affirmed(text: str, pattern: str) -> tuple[str, ...]:
    r = reader()
    return r.mentions(r.from_text("DocumentReference/x", None, "Note", text), pattern)


# -- notes ---------------------------------------------------------------------------------------------------


def test_question_answer_lines_become_answers_and_leave_the_prose():
    n = reader().document(
        document("HPI: back pain.\nUrinary retention: No\nBowel incontinence: yes\nRectal tone: decreased")
    )
    assert answers(n) == [("Urinary retention", "no"), ("Bowel incontinence", "yes")]
    assert "Urinary retention" not in n.prose and "Bowel incontinence" not in n.prose
    # a line whose answer is a description stays prose, to be read as a sentence
    assert "Rectal tone: decreased" in n.prose


def test_blank_template_boxes_are_neither_answers_nor_prose():
    n = reader().document(document("SADDLE ANESTHESIA: ___\nURINARY RETENTION: N/A\nPlan: PT."))
    assert n.answers == ()
    assert "SADDLE" not in n.prose and "RETENTION" not in n.prose
    assert "Plan: PT." in n.prose


def test_unchecked_checkbox_items_are_dropped_checked_ones_kept():
    n = reader().document(document("[ ] urinary retention [x] back pain\n\u2610 saddle anesthesia"))
    assert "retention" not in n.prose and "saddle" not in n.prose
    assert "[x] back pain" in n.prose


def test_education_section_is_removed_up_to_the_next_blank_line():
    n = reader().document(
        document(
            "Assessment: lumbar radiculopathy.\n\nPatient Education: discussed cauda equina syndrome and "
            "urinary retention warning signs.\n\nPlan: PT."
        )
    )
    assert "cauda equina" not in n.prose and "retention" not in n.prose
    assert "Assessment: lumbar radiculopathy." in n.prose and "Plan: PT." in n.prose


@pytest.mark.parametrize("kind", ["Patient Instructions", "After Visit Summary", "Discharge instructions"])
def test_instruction_documents_are_not_read(kind):
    assert reader().document(document("Go to the ER if you lose bladder control.", kind=kind)) is None


def test_an_ordinary_note_is_read_with_its_kind_and_date():
    n = reader().document(document("Go to the ER if you lose bladder control.", kind="ED Provider Notes"))
    assert n is not None and n.kind == "ED Provider Notes" and n.when == day_of(1)


def test_html_note_is_read_as_visible_text():
    n = reader().document(
        document(
            "<html><body><p>Exam: <b>decreased</b> rectal tone.</p></body></html>", content_type="text/html"
        )
    )
    assert n.prose == "Exam: decreased rectal tone."


def test_empty_document_gives_no_narrative():
    assert (
        reader().document(document(None, attachment={"contentType": "application/pdf", "url": "Binary/1"}))
        is None
    )


# -- flowsheet rows: every value[x] type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reply"),
    [
        ({"valueString": "Yes"}, "yes"),
        ({"valueString": "No"}, "no"),
        ({"valueString": "positive"}, "yes"),
        ({"valueString": "denies"}, "no"),
        ({"valueCodeableConcept": yes_no("yes")}, "yes"),
        ({"valueCodeableConcept": yes_no("no")}, "no"),
        ({"valueCodeableConcept": {"coding": [{"system": V2_0136, "code": "Y"}]}}, "yes"),
        ({"valueCodeableConcept": {"coding": [{"system": V2_0136, "code": "N"}]}}, "no"),
        ({"valueCodeableConcept": {"coding": [{"system": "urn:local", "code": "1"}], "text": "Yes"}}, "yes"),
        ({"valueBoolean": True}, "yes"),
        ({"valueBoolean": False}, "no"),
    ],
)
def test_flowsheet_yes_no_in_any_value_type(value, reply):
    n = reader().observation(observation("Urinary retention", **value))
    assert answers(n) == [("Urinary retention", reply)]
    assert n.prose == ""


def test_numeric_and_quantity_values_keep_number_and_unit():
    pvr = reader().observation(observation("Post-void residual", valueQuantity={"value": 450, "unit": "mL"}))
    grade = reader().observation(observation("Left EHL strength", valueInteger=3))
    assert [(a.reply, a.value, a.unit) for a in pvr.answers] == [("value", 450.0, "mL")]
    assert [(a.reply, a.value) for a in grade.answers] == [("value", 3.0)]


def test_date_value_is_an_answer_with_a_date():
    n = reader().observation(observation("Symptom onset", valueDateTime=days_ago(40)))
    assert [(a.reply, a.when) for a in n.answers] == [("value", day_of(40))]


@pytest.mark.parametrize(
    "value", [{"dataAbsentReason": {"text": "not asked"}}, {"valueString": "N/A"}, {"valueString": "___"}]
)
def test_unanswered_flowsheet_row_gives_no_narrative(value):
    assert reader().observation(observation("Urinary retention", **value)) is None


def test_free_text_answer_is_read_as_a_sentence_starting_with_its_question():
    n = reader().observation(observation("Rectal tone", valueString="decreased"))
    assert n.answers == () and n.prose == "Rectal tone: decreased."  # its own sentence


def test_long_free_text_value_is_prose_on_its_own():
    text = "Patient reports " + "intermittent discomfort " * 12
    n = reader().observation(observation("Nursing note", valueString=text))
    assert n.prose == text and not n.prose.startswith("Nursing note:")


def test_components_are_rows_of_their_own():
    n = reader().observation(
        observation(
            "Bladder screen",
            components=[
                {"code": {"text": "Urinary retention"}, "valueString": "Yes"},
                {"code": {"text": "Incontinence"}, "valueBoolean": False},
            ],
        )
    )
    assert answers(n) == [("Urinary retention", "yes"), ("Incontinence", "no")]


@pytest.mark.parametrize(
    ("category", "kind"), [("survey", "Questionnaire"), ("exam", "Exam"), (None, "Flowsheet")]
)
def test_observation_kind_follows_its_category(category, kind):
    assert (
        reader().observation(observation("Urinary retention", valueBoolean=True, category=category)).kind
        == kind
    )


# -- questionnaires ------------------------------------------------------------------------------------------


def test_questionnaire_answers_unanswered_items_and_free_text():
    n = reader().questionnaire(
        questionnaire(
            [
                ("Urinary retention?", {"valueBoolean": True}),
                ("Saddle numbness?", None),
                ("Describe", {"valueString": "numb around the anus"}),
            ]
        )
    )
    assert answers(n) == [("Urinary retention?", "yes")]
    assert n.prose == "Describe: numb around the anus."
    assert n.kind == "Questionnaire"


def test_questionnaire_with_only_unanswered_items_gives_nothing():
    assert reader().questionnaire(questionnaire([("Saddle numbness?", None), ("Retention?", None)])) is None


# -- affirmed mentions ---------------------------------------------------------------------------------------


def test_affirmed_mention_is_found_and_quoted_as_its_sentence():
    found = affirmed(
        "Patient denies urinary retention. Has urinary retention since Monday.", "urinary retention"
    )
    assert found == ("Has urinary retention since Monday.",)


@pytest.mark.parametrize(
    "text",
    [
        "Denies urinary retention.",
        "Her mother had urinary retention.",
        "Risks include urinary retention and bleeding.",
        "Return to the ED if you develop urinary retention.",
        "Screened for urinary retention?",
        "Ask about urinary retention at every visit.",
        "Urinary retention precautions were reviewed.",
    ],
)
def test_negated_hypothetical_family_risk_and_screening_mentions_are_not_affirmed(text):
    assert affirmed(text, "urinary retention") == ()


# -- the builder's narratives --------------------------------------------------------------------------------


def test_builder_reads_notes_rows_questionnaires_and_visit_reasons_but_not_emg_result_rows():
    found = narratives(
        document("Back pain."),
        observation("Urinary retention", valueBoolean=False),
        observation("L tibialis anterior EMG", valueString="fibs 2+"),
        questionnaire([("Leg pain?", {"valueString": "yes"})]),
        encounter(reason="Left leg numbness"),
    )
    kinds = sorted(n.kind for n in found)
    assert kinds == ["Flowsheet", "Progress note", "Questionnaire", "Visit reason"]
    assert not any("fibs" in n.prose for n in found)
