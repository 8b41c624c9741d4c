"""hooks/evidence/episode.py: when did the current episode start, and which document says so?

A years-old sciatica entry does not make a 3-week radiculopathy 5 years old: evidence is grouped into
episodes separated by a symptom-free gap longer than `gap_days`, and the newest episode's start is the onset.
"""

from __future__ import annotations

from datetime import date

import pytest

from hooks.evidence.episode import Span
from tests.hooks.factories import (
    TODAY,
    build,
    builder,
    condition,
    day_of,
    days_ago,
    document,
    ev,
    narratives,
    questionnaire,
    report,
)


def onset(*resources):
    """(days since onset, what dated it) of the episode the builder finds."""
    episode = build(*resources).episode
    if episode.onset is None:
        return None, None
    return (TODAY - episode.onset).days, episode.source


def note(text: str, ago: int = 0):
    return document(text, kind="Clinic note", when=days_ago(ago))


def stated(*resources) -> list[tuple[date, date]]:
    """(onset, written on) of every onset stated in these notes and forms."""
    return [(s.start, s.end) for s in builder().episodes.stated_onsets(narratives(*resources))]


# -- onsets stated in notes and forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Left leg pain x 3 weeks.", 21),
        ("Sciatica started 2 weeks ago.", 14),
        ("Radiating pain for the past 10 days.", 10),
        ("Numbness in the left foot over the last two months.", 60),
        ("3-week history of radiating left leg pain.", 21),
        ("Left leg pain, 6 weeks duration.", 42),
        ("Presents with a 10 day hx of sciatica.", 10),
    ],
)
def test_stated_durations_are_counted_back_from_the_note(text, days):
    assert stated(note(text)) == [(day_of(days), TODAY)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Radiating pain since January 10.", date(2026, 1, 10)),
        ("Pain since mid-December, worse with sitting.", date(2025, 12, 15)),
        ("Symptoms began on 1/20/2026.", date(2026, 1, 20)),
        ("Left leg pain since 11/2025.", date(2025, 11, 15)),
    ],
)
def test_stated_onset_dates_take_the_latest_such_date_before_the_note(text, expected):
    assert stated(note(text)) == [(expected, TODAY)]


def test_a_duration_about_a_test_or_visit_is_not_an_onset():
    assert stated(note("EMG done 3 weeks ago.")) == []
    assert stated(note("Follow-up visit in 2 weeks for leg pain.")) == []


def test_a_duration_without_a_symptom_is_not_an_onset():
    assert stated(note("Started gabapentin 2 weeks ago.")) == []


def test_onset_answered_on_a_form():
    form = questionnaire([("When did the pain start?", {"valueDate": days_ago(25)})], when=days_ago(0))
    assert stated(form) == [(day_of(25), TODAY)]
    future = questionnaire([("When did the pain start?", {"valueDate": "2026-12-01"})], when=days_ago(0))
    assert stated(future) == []


# -- the episode ---------------------------------------------------------------------------------------------


def test_onset_from_a_diagnosis_names_the_diagnosis():
    days, source = onset(condition("M54.17", text="Lumbosacral radiculopathy", onset=days_ago(30)))
    assert days == 30 and source.code == "M54.17" and source.label == "Problem list"


def test_onset_stated_in_a_note_names_the_note_and_quotes_it():
    days, source = onset(note("Left leg pain x 3 weeks."))
    assert days == 21
    assert (source.what, source.text) == ("stated onset", "Left leg pain x 3 weeks.")
    assert source.label.startswith("Clinic note of ")


def test_emg_date_dates_the_episode_when_nothing_else_does():
    days, source = onset(
        report(conclusion="IMPRESSION: Left L5 radiculopathy with active denervation.", when=days_ago(12))
    )
    assert days == 12 and source.label == "EMG/NCS report"


def test_a_stale_problem_list_entry_does_not_date_a_new_episode():
    """The gap rule: sciatica on the list for 5 years, then 3 weeks of new radicular pain."""
    days, source = onset(
        condition("M54.42", text="Sciatica, left side", onset=days_ago(1800)),
        note("New left leg pain x 3 weeks."),
    )
    assert days == 21 and source.what == "stated onset"


def test_evidence_within_the_gap_joins_the_episode():
    gap = builder().episodes.k.gap_days
    days, source = onset(
        condition("M54.42", text="Sciatica", onset=days_ago(gap - 10)),
        condition("M54.17", text="Radiculopathy", onset=days_ago(20)),
    )
    assert days == gap - 10 and source.code == "M54.42"


def test_evidence_beyond_the_gap_starts_a_new_episode():
    gap = builder().episodes.k.gap_days
    days, source = onset(
        condition("M54.42", text="Sciatica", onset=days_ago(gap + 40)),
        condition("M54.17", text="Radiculopathy", onset=days_ago(20)),
    )
    assert days == 20 and source.code == "M54.17"


def test_a_stated_onset_spans_to_the_day_it_was_written():
    """'Pain since <300 days ago>' written 100 days ago covers 300..100 days ago, so a note today joins it;
    the same onset as a one-day diagnosis would be beyond the gap."""
    since = day_of(300)
    spanning = note(f"Left leg pain since {since:%B} {since.day}, {since.year}.", ago=100)
    today = note("Leg pain x 1 week.")
    assert onset(spanning, today)[0] == 300
    point = condition("M54.42", text="Sciatica", onset=days_ago(300))
    assert onset(point, today)[0] == 7


def test_no_dated_evidence_no_onset():
    assert onset(note("Back pain.")) == (None, None)
    assert build().days is None


def test_episode_rule_on_spans_directly():
    reader = builder().episodes
    old = Span(ev("Condition/a", 400, what="radicular symptoms"))
    new = Span(ev("Condition/b", 10, what="radiculopathy"))
    assert reader.episode([old, new], TODAY).onset == day_of(10)
    joined = Span(ev("DocumentReference/n", 400, what="stated onset"), end_date=day_of(100))
    assert reader.episode([joined, new], TODAY).onset == day_of(400)
    future = Span(ev("Condition/f", -5, what="radiculopathy"))
    assert reader.episode([future], TODAY).onset is None


@pytest.mark.xfail(strict=True, reason="'<n> months of <symptom>' is not read as a duration (gap, reported)")
def test_months_of_a_symptom_is_a_duration():
    assert stated(note("Two months of sciatica.")) == [(day_of(60), TODAY)]
