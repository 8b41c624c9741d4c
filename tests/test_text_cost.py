"""Reading text is linear in its length, and one hook call's reading is bounded (issue 12, item 1).

The reader's work is counted, not timed (speed is measured by `benchmarks/text_cost.py`): every regular
expression the EMG reader holds is wrapped by a counter of the characters it is asked to scan. Linear
reading scans about 4 times as much for a text 4 times as long; the per-mention laterality search of
before scanned 16 times as much. Under gunicorn, the hostile requests that used to get a worker killed
(`tests/test_gunicorn_contract.py`) are answered.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from benchmarks.text_cost import ABSENCE, HTML_SHAPES, SCENARIO, SHAPES, repeat
from hooks.app import create_app as production_app
from hooks.nlp import EmgTextAnalyzer, TextBudget, affirmed_mentions, html_to_text, looks_like_html
from hooks.nlp.context import load_knowledge
from tests.builders import settings as app_settings


class CountingPattern:
    """A compiled pattern that adds up the characters each call may scan (anchored calls count 1)."""

    def __init__(self, pattern: re.Pattern[str], counter: list[int]) -> None:
        self._pattern = pattern
        self._counter = counter

    def _scan(self, string: str, pos: int = 0, endpos: int | None = None) -> None:
        end = len(string) if endpos is None else min(endpos, len(string))
        self._counter[0] += max(0, end - pos)

    def search(self, string: str, *args: Any) -> Any:
        self._scan(string, *args)
        return self._pattern.search(string, *args)

    def finditer(self, string: str, *args: Any) -> Any:
        self._scan(string, *args)
        return self._pattern.finditer(string, *args)

    def findall(self, string: str, *args: Any) -> Any:
        self._scan(string, *args)
        return self._pattern.findall(string, *args)

    def sub(self, repl: Any, string: str, *args: Any) -> Any:
        self._scan(string)
        return self._pattern.sub(repl, string, *args)

    def split(self, string: str, *args: Any) -> Any:
        self._scan(string)
        return self._pattern.split(string, *args)

    def match(self, string: str, *args: Any) -> Any:
        self._counter[0] += 1
        return self._pattern.match(string, *args)

    def fullmatch(self, string: str, *args: Any) -> Any:
        self._counter[0] += 1
        return self._pattern.fullmatch(string, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)


def _wrap(value: Any, counter: list[int], seen: set[int]) -> Any:
    """Wrap every pattern reachable from the reader's objects, lists, tuples and dicts."""
    if isinstance(value, re.Pattern):
        return CountingPattern(value, counter)
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [_wrap(v, counter, seen) for v in value]
    elif isinstance(value, tuple):
        return tuple(_wrap(v, counter, seen) for v in value)
    elif isinstance(value, dict):
        for key in list(value):
            value[key] = _wrap(value[key], counter, seen)
    elif type(value).__module__.startswith("hooks.nlp"):
        for cls in type(value).__mro__:  # class-level patterns (ContextEngine._END), shadowed per instance
            for name, attr in vars(cls).items():
                if isinstance(attr, re.Pattern) and name not in getattr(value, "__dict__", {}):
                    setattr(value, name, CountingPattern(attr, counter))
        for name, attr in list(getattr(value, "__dict__", {}).items()):
            setattr(value, name, _wrap(attr, counter, seen))
    return value


@pytest.fixture(scope="module")
def counted() -> tuple[EmgTextAnalyzer, list[int]]:
    counter = [0]
    return _wrap(EmgTextAnalyzer.load(), counter, set()), counter


def _work(counted: tuple[EmgTextAnalyzer, list[int]], read: Any, text: str) -> int:
    analyzer, counter = counted
    counter[0] = 0
    read(analyzer, text)
    assert counter[0] > 0  # the counter sees the reader's patterns
    return counter[0]


READERS = {
    "impression": lambda a, t: a.analyze(t, is_impression=True),
    "report": lambda a, t: a.analyze("IMPRESSION:\n" + t),
    "affirmed": lambda a, t: affirmed_mentions(t, rf"radiculopath\w*|\bL5\b|{ABSENCE}", engine=a.engine),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_reading_work_grows_linearly_with_text_length(counted, shape: str, reader: str) -> None:
    """4x the text, about 4x the scanning: never mentions x sentence length (16x)."""
    unit, read = SHAPES[shape], READERS[reader]
    small = _work(counted, read, repeat(unit, 4000))
    large = _work(counted, read, repeat(unit, 16000))
    assert large <= 5 * small, f"{shape}/{reader}: {small} -> {large} characters scanned"


def test_linear_reading_still_finds_side_nearest_the_finding() -> None:
    """The side index answers as the per-mention scan did: nearest word, bilateral, study-wide side."""
    analyzer = EmgTextAnalyzer.load()
    near = analyzer.analyze(
        "Right peroneal neuropathy; left L5 radiculopathy with denervation.", is_impression=True
    )
    assert (near.positive, near.laterality) == (True, "left")
    both = analyzer.analyze("Bilateral L5 radiculopathies with active denervation.", is_impression=True)
    assert both.laterality == "bilateral"
    study = analyzer.analyze(
        "Abnormal EMG of the left lower extremity. L5 radiculopathy with fibrillations in tibialis anterior.",
        is_impression=True,
    )
    assert (study.positive, study.laterality) == (True, "left")
    text = repeat("L5 radiculopathy with denervation ", 19_000) + " on the right"
    long = analyzer.analyze(text, is_impression=True)
    assert long.positive and long.laterality == "right"


@pytest.mark.parametrize("shape", sorted(HTML_SHAPES))
def test_unclosed_html_markup_is_kept_as_text_not_rescanned(shape: str) -> None:
    markup = "<p>L5 radiculopathy</p>" + repeat(HTML_SHAPES[shape], 100_000)
    text = html_to_text(markup)
    assert text.startswith("\n\nL5 radiculopathy\n\n") and len(text) > 90_000


def test_html_to_text_keeps_structure_entities_and_skips_scripts() -> None:
    markup = (
        "<html><head><style>p {}</style><script>var s = '<p>no</p>';</script></head><body>"
        "<h2>IMPRESSION</h2><p title='a>b'>Left L5 radiculopathy &amp; active denervation</p>"
        "<ul><li>one</li><li>two</li></ul>a < b<br/>c<pre>x\n  y</pre><!-- hidden --></body></html>"
    )
    text = html_to_text(markup)
    assert "IMPRESSION\n\nLeft L5 radiculopathy & active denervation\n\n" in text
    assert "\n- one\n\n- two" in text and "a < b\nc" in text and "x\n  y" in text
    assert "var s" not in text and "hidden" not in text and "a>b" not in text and "{" not in text
    assert looks_like_html("<p class=x>text</p>") and not looks_like_html("a <p without end")


def test_text_budget_charges_every_text_and_cuts_the_rest() -> None:
    budget = TextBudget(10)
    assert budget.take("abcd") == "abcd" and budget.remaining == 6 and not budget.exhausted
    assert budget.take(None) == "" and budget.take("") == ""
    assert budget.take("efghijkl") == "efghij" and budget.remaining == 0 and budget.exhausted
    assert budget.take("more") == "" and budget.cut == 2 and budget.used == 10
    with pytest.raises(ValueError):
        TextBudget(-1)


def test_text_budget_size_comes_from_the_knowledge_file() -> None:
    knowledge = load_knowledge()
    assert EmgTextAnalyzer.load().budget().limit == knowledge["limits"]["max_chars_per_call"]
    knowledge["limits"]["max_chars_per_call"] = 1234
    analyzer = EmgTextAnalyzer(knowledge, EmgTextAnalyzer.load().engine)
    assert analyzer.budget().limit == 1234 and analyzer.budget() is not analyzer.budget()


def test_many_attachments_read_through_one_budget_stop_at_its_limit(counted) -> None:
    """What the evidence layer does per call: 200 attachments of 20,000 characters, one budget."""
    analyzer, counter = counted
    texts = [repeat(f"Left L5 radiculopathy with denervation {i}. ", 20_000) for i in range(200)]
    one = _work(counted, lambda a, t: a.analyze(t), texts[0])
    empty = _work(counted, lambda a, t: a.analyze(t), "")
    budget = analyzer.budget()
    fits = budget.limit // 20_000
    counter[0] = 0
    findings = [analyzer.analyze(budget.take(text)) for text in texts]
    assert budget.used == budget.limit and budget.cut == 200 - fits
    assert all(f.positive for f in findings[:fits]) and not any(f.positive for f in findings[fits:])
    # Scanning is bounded by the budget (about `fits` texts), not by the 200 texts of the request.
    assert counter[0] <= 1.1 * (fits * one + (200 - fits) * empty)


def test_one_hook_call_reads_at_most_its_text_budget(monkeypatch) -> None:
    """30 EMG reports of 20,000 characters each (600,000) in one call: at most `max_chars_per_call` read."""
    read = [0]
    original = EmgTextAnalyzer.analyze

    def counting(self, text, *args, **kwargs):
        read[0] += len(text)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(EmgTextAnalyzer, "analyze", counting)
    app = production_app(app_settings(clock=datetime(2026, 1, 15, tzinfo=UTC)))
    body = json.loads(SCENARIO.read_text(encoding="utf-8"))
    template = body["prefetch"]["reports"]["entry"][0]
    entries = []
    for i in range(30):
        entry = copy.deepcopy(template)
        entry["resource"]["id"] = f"hostile-{i}"
        entry["resource"]["identifier"][0]["value"] = f"EMG-hostile-{i}"
        entry["resource"]["conclusion"] = repeat(f"Left L5 radiculopathy with denervation {i}. ", 20_000)
        entry["resource"].pop("presentedForm", None)
        entries.append(entry)
    body["prefetch"]["reports"]["entry"] = entries
    response = app.test_client().post("/cds-services/l5-radiculopathy-patient-view", json=body)
    assert response.status_code == 200
    assert read[0] > 0
    assert read[0] <= EmgTextAnalyzer.load().budget().limit
    # The clinician is told the chart was not read in full.
    details = [c.get("detail", "") for c in response.get_json()["cards"]]
    assert details and all("reading limit reached" in d for d in details if "cut short" in d)
    assert any("reading limit reached" in d for d in details)
