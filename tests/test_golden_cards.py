"""Every fixture answers exactly the cards recorded before the speed-ups of issue 16 (uuids aside).

The recording (`tests/data/golden_cards.jsonl`, made by `python -m tests.golden_cards --record` on main before
the optimisations) covers every scenario, every demo story sent to every service, and the real-chart
corpus, through the whole HTTP path: request decoding, pre-filter, model cache, rules, card serialisation.
"""

from __future__ import annotations

import json

import pytest

from tests.golden_cards import load, replay

RECORDED_ON, RECORDED = load()
AGAIN: dict = {}
CURRENT = replay(again=AGAIN)


def test_every_fixture_is_replayed():
    assert len(RECORDED) >= 390, "the recording covers scenarios, demo stories and the chart corpus"
    assert CURRENT.keys() == RECORDED.keys()
    assert {item["status"] for item in CURRENT.values()} == {200}


def test_the_same_call_again_answers_the_same_cards():
    """The second call is served from the per-worker caches (parsed models, text readings)."""
    assert [n for n in CURRENT if AGAIN.get(n) != CURRENT[n]] == []


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_cards_are_identical_to_the_recording(case: str):
    got, want = CURRENT.get(case), RECORDED[case]
    assert got == want, (
        f"{case}: the cards differ from the recording ({RECORDED_ON}). If the change is intended, re-record "
        f"with `python -m tests.golden_cards --record` and review the data file's diff.\n"
        f"got:  {json.dumps(got, sort_keys=True)[:2000]}\nwant: {json.dumps(want, sort_keys=True)[:2000]}"
    )
