"""Tests for the EMG impression reader (hooks.nlp) and the ConText engine (hooks.nlp).

Scenario numbers refer to shared/docs/clinical-brief.md section 7; where the issue text differs it wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.medspacy_context import build_analyzer
from hooks import nlp
from hooks.nlp import ContextEngine, EmgTextAnalyzer, EmgTextFinding, affirmed_mentions

CORPUS = Path(__file__).parent / "data" / "emg_corpus.jsonl"
BRIEF_CONCLUSION = (
    "Abnormal study. Electrodiagnostic evidence of a left L5 radiculopathy with active denervation "
    "(axon loss). No evidence of lumbosacral plexopathy, fibular or tibial mononeuropathy, "
    "polyneuropathy or myopathy."
)


@pytest.fixture(scope="module")
def analyzer() -> EmgTextAnalyzer:
    return EmgTextAnalyzer.load()


def imp(analyzer: EmgTextAnalyzer, text: str) -> EmgTextFinding:
    return analyzer.analyze(text, is_impression=True)


# ------------------------------------------------------------------------------------------- brief scenarios
def test_scenario_1_conclusion_negated_list_does_not_cancel(analyzer: EmgTextAnalyzer) -> None:
    f = imp(analyzer, BRIEF_CONCLUSION)
    assert (f.positive, f.l5_radiculopathy, f.axon_loss) == (True, True, True)
    assert (f.laterality, f.chronicity, f.confidence) == ("left", "acute", "high")
    assert (f.multi_level, f.other_roots, f.mimic) == (False, (), None)
    assert (f.uncertain, f.negated, f.section, f.truncated) == (False, False, None, False)
    assert "left L5 radiculopathy with active denervation" in f.matched_text
    assert "No evidence" not in f.matched_text


def test_scenario_1_presented_form_with_indication(analyzer: EmgTextAnalyzer) -> None:
    report = (
        "INDICATION: Left leg pain, r/o left L5 radiculopathy.\nFINDINGS: see tables.\n"
        f"IMPRESSION: {BRIEF_CONCLUSION}"
    )
    f = analyzer.analyze(report)
    assert f.positive and f.section == "IMPRESSION" and f.confidence == "high"


def test_issue_example_second_sentence_negated(analyzer: EmgTextAnalyzer) -> None:
    f = imp(
        analyzer,
        "Left L5 radiculopathy with active denervation. No evidence of lumbosacral plexopathy, "
        "peroneal or tibial mononeuropathy, polyneuropathy or myopathy.",
    )
    assert f.positive and f.laterality == "left" and f.chronicity == "acute" and f.mimic is None


def test_scenario_2_normal(analyzer: EmgTextAnalyzer) -> None:
    f = imp(analyzer, "No electrodiagnostic evidence of lumbosacral radiculopathy. Normal study.")
    assert (f.positive, f.l5_radiculopathy, f.negated, f.uncertain) == (False, False, True, False)
    assert (f.laterality, f.chronicity, f.multi_level) == (None, None, False)


def test_scenario_3_s1_not_l5(analyzer: EmgTextAnalyzer) -> None:
    f = imp(
        analyzer,
        "Right S1 radiculopathy with active denervation in medial gastrocnemius and soleus; "
        "absent right H-reflex.",
    )
    assert (f.positive, f.l5_radiculopathy, f.axon_loss) == (False, False, False)
    assert f.other_roots == ("S1",)
    assert (f.negated, f.uncertain, f.laterality) == (False, False, None)


def test_scenario_14_corrected_report(analyzer: EmgTextAnalyzer) -> None:
    f = imp(analyzer, "No electrodiagnostic evidence of radiculopathy")
    assert (f.positive, f.l5_radiculopathy, f.negated) == (False, False, True)


def test_scenario_18_range_notation_low_confidence(analyzer: EmgTextAnalyzer) -> None:
    f = imp(analyzer, "Chronic left L5-S1 radiculopathy with ongoing denervation.")
    assert (f.positive, f.confidence, f.multi_level) == (True, "low", True)
    assert (f.laterality, f.chronicity, f.other_roots) == ("left", "chronic-active", ("S1",))


@pytest.mark.parametrize(
    "report",
    [
        "REASON FOR REFERRAL: r/o left L5 radiculopathy\nFINDINGS: Normal NCS and needle EMG.\n"
        "IMPRESSION: Normal study.",
        "REASON FOR REFERRAL: r/o left L5 radiculopathy \u2026 IMPRESSION: Normal study.",
    ],
)
def test_scenario_19_indication_only(analyzer: EmgTextAnalyzer, report: str) -> None:
    f = analyzer.analyze(report)
    assert (f.positive, f.l5_radiculopathy, f.section) == (False, False, "IMPRESSION")
    assert "L5" not in f.matched_text


def test_scenario_20a_fibular_mimic(analyzer: EmgTextAnalyzer) -> None:
    f = imp(
        analyzer,
        "Left fibular neuropathy at the fibular head with axon loss; no evidence of L5 radiculopathy.",
    )
    assert (f.positive, f.l5_radiculopathy, f.negated) == (False, False, True)
    assert f.mimic == "fibular neuropathy"
    assert f.axon_loss is False  # the axon loss belongs to the fibular neuropathy


def test_scenario_20b_chronic_only(analyzer: EmgTextAnalyzer) -> None:
    f = imp(
        analyzer, "Chronic left L5 radiculopathy without active denervation; chronic neurogenic MUAP changes."
    )
    assert (f.positive, f.axon_loss, f.laterality, f.chronicity) == (True, True, "left", "chronic")


# ------------------------------------------------------------------------------------ negation / uncertainty
@pytest.mark.parametrize(
    "text",
    [
        "Normal EMG does not exclude a radiculopathy",
        "Normal EMG does not exclude a left L5 radiculopathy.",
        "Left L5 radiculopathy with active denervation cannot be excluded.",
        "Possible left L5 radiculopathy with fibrillations in the tibialis anterior.",
    ],
)
def test_uncertainty_is_not_positive(analyzer: EmgTextAnalyzer, text: str) -> None:
    f = imp(analyzer, text)
    assert (f.positive, f.uncertain, f.negated) == (False, True, False)


@pytest.mark.parametrize(
    "text",
    [
        "History of left L5 radiculopathy with active denervation; today's study is normal.",
        "Prior EMG showed a left L5 radiculopathy with active denervation.",
        "If symptoms persist, repeat EMG to evaluate for a left L5 radiculopathy with denervation.",
    ],
)
def test_history_and_hypothetical_are_not_positive(analyzer: EmgTextAnalyzer, text: str) -> None:
    assert imp(analyzer, text).positive is False


def test_l5_without_axon_loss_is_not_rule_a(analyzer: EmgTextAnalyzer) -> None:
    f = imp(analyzer, "Left L5 radiculopathy.")
    assert (f.l5_radiculopathy, f.axon_loss, f.positive) == (True, False, False)


@pytest.mark.parametrize(
    ("text", "laterality", "multi"),
    [
        (
            "Electrodiagnostic evidence consistent with a right L5 radiculopathy with fibrillations.",
            "right",
            False,
        ),
        ("Findings are compatible with a left L5 root lesion with ongoing axon loss.", "left", False),
        ("There is left L5 nerve root involvement with chronic reinnervation.", "left", False),
        ("Compromise of the fifth lumbar root on the right with fibrillations in the EHL.", "right", False),
        ("L-5 radiculopathy, right, with active denervation.", "right", False),
        ("Evidence of L 5 radiculopathy on the left with fibs and PSWs.", "left", False),
        ("LLE: L5 radiculopathy with positive sharp waves.", "left", False),
        ("Radiculopathies at L5 and S1 on the left with active denervation.", "left", True),
        ("Right L4-5 radiculopathy with reinnervation.", "right", True),
        (
            "Bilateral L5 radiculopathies with fibrillation potentials, left worse than right.",
            "bilateral",
            False,
        ),
    ],
)
def test_vendor_wording(analyzer: EmgTextAnalyzer, text: str, laterality: str, multi: bool) -> None:
    f = imp(analyzer, text)
    assert (f.positive, f.laterality, f.multi_level) == (True, laterality, multi)
    assert f.confidence == ("low" if multi else "high")


# ---------------------------------------------------------------------------------------- format handling
HTML_REPORT = """<html><head><style>p { color: red }</style></head><body>
<h3>Reason for Referral</h3><p>Left foot drop; rule out left L5 radiculopathy.</p>
<h3>Findings</h3><table><tr><td>L Tibialis Anterior</td><td>2+</td><td>2+</td></tr></table>
<h3>Impression</h3><p>Left L5 radiculopathy with active denervation &amp; axon loss.</p>
<p>No evidence of a peroneal neuropathy.</p></body></html>"""


def test_html_report(analyzer: EmgTextAnalyzer) -> None:
    f = analyzer.analyze(HTML_REPORT, "text/html")
    assert (f.positive, f.section, f.laterality, f.chronicity) == (True, "IMPRESSION", "left", "acute")
    assert "<" not in f.matched_text and "&amp;" not in f.matched_text
    assert analyzer.impression(HTML_REPORT, "text/html") == (
        "Left L5 radiculopathy with active denervation & axon loss.\n\nNo evidence of a peroneal neuropathy."
    )


def test_html_declared_as_plain_text_is_sniffed(analyzer: EmgTextAnalyzer) -> None:
    f = analyzer.analyze(HTML_REPORT, "text/plain")
    assert f.positive and f.section == "IMPRESSION"


def test_html_indication_only(analyzer: EmgTextAnalyzer) -> None:
    html = (
        "<p><b>INDICATION:</b> left L5 radiculopathy with axon loss?</p>"
        "<p><b>IMPRESSION:</b> Normal study.</p>"
    )
    f = analyzer.analyze(html, "text/html; charset=utf-8")
    assert f.positive is False and f.section == "IMPRESSION"


def test_no_header_confidence_drops_one_level(analyzer: EmgTextAnalyzer) -> None:
    text = "Left L5 radiculopathy with active denervation in the tibialis anterior."
    whole = analyzer.analyze(text)
    assert (whole.positive, whole.section, whole.confidence) == (True, None, "medium")
    assert analyzer.analyze(text, is_impression=True).confidence == "high"
    assert analyzer.impression(text) is None
    ranged = analyzer.analyze("Chronic left L5-S1 radiculopathy with ongoing denervation.")
    assert ranged.confidence == "low"


def test_is_impression_is_not_section_scoped_again(analyzer: EmgTextAnalyzer) -> None:
    text = "INDICATION: left L5 radiculopathy with fibrillations"
    assert analyzer.analyze(text).positive is False  # scoped: indication excluded
    assert (
        analyzer.analyze(text, is_impression=True).l5_radiculopathy is True
    )  # caller said it is the impression


def test_truncation_is_flagged_not_fatal(analyzer: EmgTextAnalyzer) -> None:
    filler = "Nerve conduction values are listed in the attached table. " * 1000
    f = analyzer.analyze("IMPRESSION: Left L5 radiculopathy with active denervation. " + filler)
    assert f.truncated and f.positive
    late = analyzer.analyze(filler + "IMPRESSION: Left L5 radiculopathy with active denervation.")
    assert late.truncated and not late.positive
    huge_html = "<p>" + "x" * 200_000 + "</p>"
    assert analyzer.analyze(huge_html, "text/html").truncated


def test_configurable_max_chars(tmp_path: Path) -> None:
    knowledge = yaml.safe_load(nlp.DEFAULT_KNOWLEDGE_PATH.read_text(encoding="utf-8"))
    knowledge["limits"]["max_chars"] = 80
    path = tmp_path / "emg_text.yaml"
    path.write_text(yaml.safe_dump(knowledge), encoding="utf-8")
    small = EmgTextAnalyzer.load(path)
    assert small.max_chars == 80
    f = small.analyze("Left L5 radiculopathy with active denervation. " * 5, is_impression=True)
    assert f.truncated and f.positive


@pytest.mark.parametrize("text", ["", "   \n ", "IMPRESSION:", "<p></p>", "L5 " * 10_000, "no " * 10_000])
def test_degenerate_input_does_not_crash(analyzer: EmgTextAnalyzer, text: str) -> None:
    f = analyzer.analyze(text)
    assert f.positive is False and len(f.matched_text) <= 300


def test_evidence_is_trimmed(analyzer: EmgTextAnalyzer) -> None:
    long = (
        "Left L5 radiculopathy with active denervation in " + ", ".join(["the tibialis anterior"] * 40) + "."
    )
    f = imp(analyzer, long)
    assert f.positive and len(f.matched_text) <= 300 and f.matched_text.endswith("\u2026")


# ---------------------------------------------------------------------------------------- loading / knowledge
def test_knowledge_file_is_versioned() -> None:
    data = yaml.safe_load(nlp.DEFAULT_KNOWLEDGE_PATH.read_text(encoding="utf-8"))
    assert data["version"] == "2026.11.3" and data["source"]
    assert EmgTextAnalyzer.load().knowledge_version == "2026.11.3"


def test_nothing_is_built_at_import() -> None:
    for module in (nlp, *(getattr(nlp, name) for name in dir(nlp) if name.startswith("emg_"))):
        assert not [v for v in vars(module).values() if isinstance(v, EmgTextAnalyzer | ContextEngine)]


def test_unknown_backend_rejected() -> None:
    with pytest.raises(ValueError):
        build_analyzer("nope")


def test_medspacy_backend_agrees_on_scenarios() -> None:
    pytest.importorskip("medspacy")
    ms = build_analyzer("medspacy")
    assert imp(ms, BRIEF_CONCLUSION).positive
    assert not imp(
        ms, "Left fibular neuropathy at the fibular head with axon loss; no evidence of L5 radiculopathy."
    ).positive
    assert imp(ms, "Normal EMG does not exclude a left L5 radiculopathy.").uncertain


# ---------------------------------------------------------------------------------------- ConText reuse
@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        (
            "Denies saddle anesthesia, bowel or bladder incontinence.",
            r"saddle\s+an(?:a)?esthesia|incontinence",
            [],
        ),
        ("No urinary retention.", r"urinary\s+retention", []),
        (
            "Patient reports new urinary retention since Tuesday.",
            r"urinary\s+retention",
            ["Patient reports new urinary retention since Tuesday."],
        ),
        ("Chronic stress incontinence.", r"incontinence", []),
        ("History of bladder incontinence after childbirth.", r"incontinence", []),
        ("Saddle anesthesia today. Denies fever.", r"saddle\s+anesthesia", ["Saddle anesthesia today."]),
    ],
)
def test_affirmed_mentions_red_flags(text: str, pattern: str, expected: list[str]) -> None:
    assert affirmed_mentions(text, pattern) == expected


def test_affirmed_mentions_uncertain_is_configurable() -> None:
    text = "Possible cauda equina syndrome."
    assert affirmed_mentions(text, r"cauda\s+equina") == [text]
    excl = nlp.DEFAULT_EXCLUDE | {"uncertain"}
    assert affirmed_mentions(text, r"cauda\s+equina", exclude=excl) == []


def test_finding_exclude_keeps_chronic_findings() -> None:
    text = "Stable left paracentral L4-5 extrusion compressing the traversing L5 root. No stenosis."
    assert affirmed_mentions(text, r"extrusion") == []  # red-flag default: "stable" is not new
    assert affirmed_mentions(text, r"extrusion", exclude=nlp.FINDING_EXCLUDE) == [text.split(" No")[0]]
    assert affirmed_mentions(text, r"stenosis", exclude=nlp.FINDING_EXCLUDE) == []


def test_is_negated_mention(analyzer: EmgTextAnalyzer) -> None:
    assert analyzer.is_negated_mention("Denies saddle anesthesia.", "saddle anesthesia") is True
    assert analyzer.is_negated_mention("New saddle anesthesia.", "saddle anesthesia") is False
    assert analyzer.is_negated_mention("Back pain.", "saddle anesthesia") is None


# ---------------------------------------------------------------------------------------- whole corpus
def _corpus() -> list[dict]:
    with open(CORPUS, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_corpus_shape() -> None:
    rows = _corpus()
    assert len(rows) >= 100
    assert len({r["id"] for r in rows}) == len(rows)
    share = sum(r["expected"]["positive"] for r in rows) / len(rows)
    assert 0.3 <= share <= 0.55
    assert {r["content_type"] for r in rows} == {"text/plain", "text/html"}


def test_corpus_precision_recall(analyzer: EmgTextAnalyzer) -> None:
    rows = _corpus()
    tp = fp = fn = 0
    misses: list[str] = []
    lat_ok = chron_ok = ml_ok = positives = 0
    for row in rows:
        f = analyzer.analyze(row["text"], row["content_type"], is_impression=row["is_impression"])
        exp = row["expected"]
        if f.positive and exp["positive"]:
            tp += 1
        elif f.positive:
            fp += 1
            misses.append(f"FP {row['id']}")
        elif exp["positive"]:
            fn += 1
            misses.append(f"FN {row['id']}")
        if exp["positive"]:
            positives += 1
            lat_ok += f.laterality == exp["laterality"]
            chron_ok += f.chronicity == exp["chronicity"]
            if f.laterality != exp["laterality"] or f.chronicity != exp["chronicity"]:
                misses.append(f"qualifier {row['id']}: {f.laterality}/{f.chronicity}")
        ml_ok += f.multi_level == exp["multi_level"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    detail = f"precision={precision:.3f} recall={recall:.3f} mismatches={misses}"
    assert precision >= 0.97, detail
    assert recall >= 0.97, detail
    assert lat_ok / positives >= 0.95, detail
    assert chron_ok / positives >= 0.9, detail
    assert ml_ok / len(rows) >= 0.95, detail
