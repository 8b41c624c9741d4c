"""hooks/nlp/context.py: a trigger that is one of the finding's own words does not modify the finding.

"Absent anal wink" is a finding, not the negation of one: the trigger "absent" overlaps the mention, and a
modifier never modifies a target it overlaps (medspaCy's rule). A negation that only fills a gap of a loose
pattern ("saddle region, no numbness") is not needed for the match, and still negates.
"""

from __future__ import annotations

from functools import cache

import pytest

from hooks.nlp import ContextEngine


@cache
def engine() -> ContextEngine:
    return ContextEngine.load()


def assertion(text: str, pattern: str):
    [mention] = engine().mentions(text, pattern)
    return mention.assertion


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("Absent anal wink.", r"\b(?:absent|no)\s+anal\s+wink"),
        ("No rectal tone.", r"\b(?:absent|no)\s+rectal\s+tone"),
        ("Anal wink is absent on exam.", r"anal\s+wink\s+(?:is\s+)?absent"),
        ("Not able to void since last night.", r"\b(?:unable|not\s+able)\s+to\s+void"),
    ],
)
def test_a_trigger_that_is_part_of_the_finding_does_not_negate_it(text, pattern):
    found = assertion(text, pattern)
    assert not found.negated and found.affirmed()


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("No anal wink.", r"anal\s+wink"),  # the trigger is outside the mention
        ("Saddle region, no numbness.", r"saddle\b[^.]{0,30}\bnumb\w*"),  # the trigger only fills the gap
        (
            "No loss of rectal tone.",
            r"\b(?:loss\s+of|no)\b[^.]{0,15}\brectal\s+tone",
        ),  # not needed: "loss of"
    ],
)
def test_a_trigger_the_match_does_not_need_still_negates(text, pattern):
    assert assertion(text, pattern).negated


def test_other_triggers_in_scope_still_apply():
    """The own word is ignored, not every trigger: a real negation before it still negates."""
    found = assertion("Denies absent anal wink.", r"\b(?:absent|no)\s+anal\s+wink")
    assert found.negated and found.triggers == ("negated:Denies",)


def test_a_mention_without_triggers_inside_is_unchanged():
    assert assertion("History of urinary retention.", r"urinary\s+retention").historical
    assert not assertion("Urinary retention.", r"urinary\s+retention").flags
