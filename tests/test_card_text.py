"""Cards are written for clinicians (issue 13): every card of every scenario and real-chart case is checked.

- evidence is named by document kind and date, never by resource id;
- every code comes with its display;
- a sentence is quoted whole, and once per response;
- `summary` is sentence case and under 140 characters;
- `detail` is valid CommonMark: rendered with markdown-it-py (a CommonMark-compliant parser), no literal
  list marker or emphasis marker survives into the text;
- every card links (type absolute) the guideline or policy it follows;
- at most 4 suggestions, the recommended one first.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from benchmarks.chart_corpus import Runner, load_cases
from hooks.app import create_app as production_app
from tests.builders import FIXTURES, post, settings

SCENARIOS = FIXTURES / "scenarios"
RESOURCE_ID = re.compile(
    r"\b(?:DiagnosticReport|DocumentReference|Observation|Condition|Procedure|ServiceRequest|Encounter|"
    r"QuestionnaireResponse|Patient|Binary)/[A-Za-z0-9.\-]+"
)
# ICD-10-CM (M54.16), CPT (72148), SNOMED (308482002): a code with its name around it passes.
CODE = re.compile(r"\b(?:[A-Z]\d{2}\.[0-9A-Z]{1,4}|\d{5}|\d{6,18})\b")
QUOTE = re.compile(r"\u201c([^\u201d]{20,})\u201d")
MD = MarkdownIt("commonmark")


def _responses() -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    app = production_app(settings(clock=datetime(2026, 1, 15, 15, 0, tzinfo=UTC)))
    client = app.test_client()
    for case in yaml.safe_load((SCENARIOS / "expected.yaml").read_text()):
        body = json.loads((SCENARIOS / case["file"]).read_text())
        out.append((case["file"], post(client, case["service"], body).get_json()["cards"]))
    runner = Runner()
    try:
        for path, case in load_cases():
            out.append((path.name, runner.run(path, case).cards))
    finally:
        runner.close()
    return out


RESPONSES = _responses()
CARDS = [(name, card) for name, cards in RESPONSES for card in cards]


def test_there_are_cards_to_check():
    assert len(CARDS) > 200
    assert {c["source"]["topic"]["code"] for _, c in CARDS} >= {
        "red-flags", "motor-deficit", "mri", "conservative-care", "esi", "surgical-referral",
        "mri-documentation", "esi-timing", "mri-before-surgery", "emg-dx-mismatch", "emg-dx-link",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "card"), CARDS, ids=[f"{n}:{c['source']['topic']['code']}" for n, c in CARDS]
)
def test_card_reads_like_clinical_text(name: str, card: dict[str, Any]):
    summary, detail = card["summary"], card.get("detail", "")
    assert len(summary) < 140 and summary[0].isupper() and not summary.isupper(), summary
    texts = [summary, detail, *(s["label"] for s in card.get("suggestions", []))]
    for text in texts:
        assert not RESOURCE_ID.search(text), f"{name}: resource id in card text: {RESOURCE_ID.search(text)}"
    for m in CODE.finditer(detail):
        before, after = detail[max(0, m.start() - 120) : m.start()], detail[m.end() : m.end() + 3]
        named = re.search(r"[A-Za-z]{3,}(?:[^()]|\([^()]*\))*\((?:[^()]*[ ,])?$", before) or re.match(
            r" [A-Za-z]", after
        )
        dated = re.search(r"\d{1,2} [A-Z][a-z]{2} $", before)  # a year in "14 Nov 2026" is not a code
        assert named or dated, (
            f"{name}: code {m.group(0)} without its display: ...{before[-60:]}{m.group(0)}{after}"
        )
    for link in card.get("links", []):
        assert link["type"] == "absolute" and link["url"].startswith(("https://", "http://"))
    assert card.get("links"), f"{name}: card without links"
    suggestions = card.get("suggestions", [])
    assert len(suggestions) <= 4, f"{name}: {len(suggestions)} suggestions"
    recommended = [i for i, s in enumerate(suggestions) if s.get("isRecommended")]
    assert recommended in ([], [0]), f"{name}: the recommended suggestion must come first"


@pytest.mark.parametrize(
    ("name", "card"), CARDS, ids=[f"{n}:{c['source']['topic']['code']}" for n, c in CARDS]
)
def test_detail_is_commonmark_without_literal_markers(name: str, card: dict[str, Any]):
    tokens = MD.parse(card.get("detail", ""))
    for token in tokens:
        if token.type != "inline":
            continue
        line_start = True
        for child in token.children or []:
            if child.type in ("softbreak", "hardbreak"):
                line_start = True
                continue
            if child.type == "text":
                assert "**" not in child.content and "__" not in child.content, f"{name}: broken emphasis"
                assert not (line_start and re.match(r"\s*[-*+] ", child.content)), (
                    f"{name}: literal list marker"
                )
            line_start = False


@pytest.mark.parametrize(("name", "cards"), RESPONSES, ids=[n for n, _ in RESPONSES])
def test_a_sentence_is_quoted_once_per_response(name: str, cards: list[dict[str, Any]]):
    quotes = [q for c in cards for q in QUOTE.findall(c.get("detail", ""))]
    repeated = {q for q in quotes if quotes.count(q) > 1}
    assert not repeated, f"{name}: quoted more than once: {repeated}"
