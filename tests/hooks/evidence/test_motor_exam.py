"""hooks/evidence/motor_exam.py: is an L5 deficit severe or progressing *now*?

A grade is current only when the note says so ("was 2/5, now 4+/5" is improving), tables and flowsheets
carry bare grades, and the newest examination decides.
"""

from __future__ import annotations

import pytest

from tests.hooks.factories import TODAY, builder, chart, condition, day_of, days_ago, document, observation


def motor(*resources):
    b = builder()
    ch = chart(*resources)
    return b.motor.read(ch.conditions(), b.narratives(ch, set()), TODAY, b.windows.new_deficit, ch.zone)


def severe(*resources) -> list[str]:
    return [e.what for e in motor(*resources).severe]


def deficits(*resources) -> set[str]:
    return {e.what for e in motor(*resources).new_deficits}


def exam(text: str, ago: int = 1, **kw):
    return document(text, kind="Clinic note", when=days_ago(ago), **kw)


# -- current grade in prose ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Left ankle dorsiflexion 2/5.",
        "EHL 3/5 on the left.",
        "Tibialis anterior 3-/5, EHL 4/5.",
        "L ADF: 1/5",
    ],
)
def test_grade_of_3_or_less_in_an_l5_muscle_is_severe(text):
    assert severe(exam(text)) == ["severe L5 weakness"]


@pytest.mark.parametrize("text", ["Left EHL 4/5.", "Ankle dorsiflexion 4+/5 bilaterally.", "EHL 5/5."])
def test_grade_above_3_is_not_severe(text):
    assert severe(exam(text)) == []


def test_grade_of_a_non_l5_muscle_is_not_an_l5_deficit():
    assert severe(exam("Left hip flexion 2/5, quadriceps 3/5.")) == []


def test_past_grade_with_a_better_current_grade_is_improving_not_severe():
    m = motor(exam("Left ankle dorsiflexion was 2/5 at the first visit, now 4+/5."))
    assert m.severe == []
    assert m.latest_exam is not None and "now 4+/5" in m.latest_exam.text


def test_worsening_within_one_note_is_severe_and_quotes_the_sentence():
    m = motor(exam("Left EHL 4/5 last week, now 3/5."))
    assert [e.what for e in m.severe] == ["severe L5 weakness"]
    assert m.severe[0].text == "Left EHL 4/5 last week, now 3/5."


def test_grade_written_before_the_muscle_is_read():
    assert severe(exam("Exam: 3-/5 left tibialis anterior.")) == ["severe L5 weakness"]
    assert severe(exam("Exam: 5/5 left tibialis anterior.")) == []


# -- tables and flowsheets -----------------------------------------------------------------------------------


def test_grades_in_table_cells():
    weak = exam("Muscle | Right | Left\nTibialis anterior | 5 | 2\nEHL | 5 | 3")
    normal = exam("Muscle | Right | Left\nTibialis anterior | 5 | 5\nEHL | 5 | 5")
    assert severe(weak) == ["severe L5 weakness"]
    assert severe(normal) == []
    assert motor(normal).latest_exam is not None  # a normal exam is still an exam


def test_bare_grade_right_after_the_movement():
    assert severe(exam("L ANKLE DORSIFLEXION: 2")) == ["severe L5 weakness"]
    assert severe(exam("L ANKLE DORSIFLEXION: 5")) == []


def test_flowsheet_integer_rows_one_muscle_per_row():
    rows = [
        observation("L ankle dorsiflexion", valueInteger=5, category="exam"),
        observation("L EHL", valueInteger=2, category="exam"),
    ]
    m = motor(*rows)
    assert [e.what for e in m.severe] == ["severe L5 weakness"]
    assert m.severe[0].text == "L EHL: 2"
    assert severe(observation("L ankle dorsiflexion strength", valueInteger=5, category="exam")) == []


def test_emg_table_numbers_are_not_strength_grades():
    m = motor(exam("Tibialis anterior: 2+ fibrillations, reduced recruitment."))
    assert m.severe == [] and m.latest_exam is None


# -- the newest examination decides --------------------------------------------------------------------------


def test_newer_normal_exam_overrides_an_older_severe_one():
    m = motor(exam("Left ankle dorsiflexion 2/5.", ago=40), exam("Left ankle dorsiflexion 5/5.", ago=5))
    assert m.severe == []
    assert m.latest_exam.when == day_of(5)


def test_newer_worse_exam_is_severe_and_progressing():
    assert severe(
        exam("Left ankle dorsiflexion 5/5.", ago=40), exam("Left ankle dorsiflexion 2/5.", ago=5)
    ) == ["severe L5 weakness, progressing"]


def test_drop_across_exams_above_3_is_progressive():
    assert severe(exam("Left EHL 5/5.", ago=40), exam("Left EHL 4/5.", ago=5)) == ["progressive L5 weakness"]


def test_exams_older_than_the_deficit_window_are_not_read():
    window = builder().windows.new_deficit
    assert severe(exam("Left ankle dorsiflexion 2/5.", ago=window + 10)) == []


# -- foot drop -----------------------------------------------------------------------------------------------


def test_foot_drop_in_notes_and_on_the_problem_list():
    assert severe(exam("Left foot drop with steppage gait.")) == ["foot drop"]
    assert severe(exam("No foot drop.")) == []
    assert severe(condition("M21.372", text="Foot drop, left foot", onset=days_ago(10))) == ["foot drop"]
    assert severe(condition("M21.372", text="Foot drop, left foot", onset=days_ago(200))) == []


def test_foot_drop_resolved_on_a_newer_exam_no_longer_counts():
    assert (
        severe(exam("Left foot drop.", ago=40), exam("Left ankle dorsiflexion 5/5, gait normal.", ago=5))
        == []
    )
    resolved = [
        condition("M21.372", text="Foot drop, left foot", onset=days_ago(40)),
        exam("Left ankle dorsiflexion 5/5.", ago=5),
    ]
    assert severe(*resolved) == []


def test_progressive_weakness_in_words():
    assert "progressive weakness" in severe(exam("Worsening weakness of the left foot over two weeks."))


# -- new deficits for the payer checklist --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("Left Achilles reflex absent.", "reflex change"),
        ("Absent left Achilles reflex.", "reflex change"),
        ("Achilles reflexes are absent on the left.", "reflex change"),
        ("Decreased sensation over the dorsum of the left foot.", "dermatomal sensory loss"),
        ("Absent sensation over the lateral left leg.", "dermatomal sensory loss"),
        ("Diminished left ankle reflex.", "reflex change"),
        ("Positive straight leg raise on the left at 40 degrees.", "positive straight-leg raise"),
        ("Decreased sensation in the left L5 dermatome.", "dermatomal sensory loss"),
        ("Numbness over the left great toe.", "dermatomal sensory loss"),
        ("Left EHL 4/5.", "weakness"),
    ],
)
def test_new_neurological_findings(text, what):
    assert what in deficits(exam(text))


@pytest.mark.parametrize(
    "text",
    [
        "Reflexes 2+ and symmetric bilaterally.",
        "Negative straight leg raise bilaterally.",
        "Weakness of the left hand grip 4/5.",
        "Sensation intact to light touch in both legs.",
        "Sensation intact over the dorsum of the left foot.",
        "No absent reflexes.",
    ],
)
def test_normal_symmetric_or_arm_findings_are_not_leg_deficits(text):
    assert deficits(exam(text)) == set()


def test_flowsheet_yes_to_a_finding_question_is_a_deficit():
    assert deficits(observation("Straight leg raise positive", valueString="Yes")) == {"neurological finding"}
    assert deficits(observation("Straight leg raise positive", valueString="No")) == set()


def test_severe_deficit_is_also_a_new_deficit():
    m = motor(exam("Left ankle dorsiflexion 2/5."))
    assert {e.what for e in m.severe} <= {e.what for e in m.new_deficits}
