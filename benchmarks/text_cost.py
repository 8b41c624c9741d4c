"""Is reading text linear in its length? Hostile shapes at n and 4n characters, and the 137 KB request.

Run from the repository root: ``python benchmarks/text_cost.py`` (about 10 s).

Why: issue 12 found report reading super-linear. A conclusion of 10,000 characters took 3.9 s. One 137 KB
request with five 20,000-character attachments got a gunicorn worker killed after 30 s. For each hostile
shape this prints the time at n and at 4n characters and their ratio: linear reading gives about 4, quadratic
about 16. It then prints the hostile hook calls against a normal one (scenario 1), served by the production
app in process, all in the same run. The hostile request builders are shared with the tests
(``tests/test_text_cost.py``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from the repository root
    sys.path.insert(0, str(ROOT))

from hooks.nlp import EmgTextAnalyzer, affirmed_mentions, html_to_text  # noqa: E402

SCENARIO = ROOT / "fhir_fixtures" / "scenarios" / "01-l5-no-mri.json"

#: Text shapes that were super-linear before issue 12, one repeated unit each.
SHAPES: dict[str, str] = {
    "mentions without a side": "L5 radiculopathy ",
    "mentions with a side": "left L5 radiculopathy with active denervation, ",
    "one mention per line": "L5 radiculopathy\n",
    "one mention per clause": "L5 radiculopathy; ",
    "alternatives": "L5 radiculopathy or peroneal neuropathy ",
    "root lesions": "L5 root lesion ",
    "L/R abbreviations": "L TA L5 radiculopathy ",
    "abbreviation dots": "Dr. L5 radiculopathy e.g. ",
    "bilateral": "bilateral L5 radiculopathy ",
    "absence findings": "absent anal wink, not able to void; ",
}
#: A red-flag style pattern whose findings are defined by an absence (own-word triggers, hooks.nlp.context).
ABSENCE = r"(?:absent|no|decreased) anal wink|anal wink (?:is )?absent|not able to void"
#: HTML that the standard library's parser rescanned at every "<" (unclosed tags, comments).
HTML_SHAPES: dict[str, str] = {
    "unclosed start tags": "<a ",
    "unclosed comments": "<!--x",
    "unclosed end tags": "</",
}


def repeat(unit: str, chars: int) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


def hostile_report_request(
    attachments: int = 5,
    chars: int = 20_000,
    unit: str = SHAPES["mentions without a side"],
    content_type: str = "text/plain",
) -> dict[str, Any]:
    """Scenario 1 with its EMG report's presentedForm replaced by ``attachments`` hostile texts.

    The defaults are issue 12's 137 KB request: five 20,000-character attachments repeating the finding.
    """
    body = copy.deepcopy(json.loads(SCENARIO.read_text(encoding="utf-8")))
    report = body["prefetch"]["reports"]["entry"][0]["resource"]
    forms = []
    for k in range(attachments):  # each one a different text: readings are memoised by their text
        text = repeat(unit, chars - k)
        if content_type != "text/plain":
            text = "<p>" + text
        forms.append({"contentType": content_type, "data": base64.b64encode(text.encode()).decode()})
    report["presentedForm"] = forms
    return body


def _best(fn: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def shapes(n: int) -> None:
    analyzer = EmgTextAnalyzer.load()
    print(f"| shape | reader | {n} chars (ms) | {4 * n} chars (ms) | ratio (linear = 4) |")
    print("|---|---|---|---|---|")
    for name, unit in SHAPES.items():
        small, large = repeat(unit, n), repeat(unit, 4 * n)
        for reader, fn in (
            ("EMG impression", lambda t: analyzer.analyze(t, is_impression=True)),
            ("affirmed mentions", lambda t: affirmed_mentions(t, r"radiculopath\w*", engine=analyzer.engine)),
            ("absence findings", lambda t: affirmed_mentions(t, ABSENCE, engine=analyzer.engine)),
        ):
            t1, t4 = _best(lambda f=fn, t=small: f(t)), _best(lambda f=fn, t=large: f(t))
            print(f"| {name} | {reader} | {t1 * 1000:.1f} | {t4 * 1000:.1f} | {t4 / t1:.1f} |")
    for name, unit in HTML_SHAPES.items():
        small, large = "<p>" + repeat(unit, 5 * n), "<p>" + repeat(unit, 20 * n)
        t1, t4 = _best(lambda t=small: html_to_text(t)), _best(lambda t=large: html_to_text(t))
        reader = f"HTML to text ({5 * n}/{20 * n})"
        print(f"| {name} | {reader} | {t1 * 1000:.1f} | {t4 * 1000:.1f} | {t4 / t1:.1f} |")


def requests(repeats: int) -> None:
    from hooks.app import create_app
    from tests.builders import settings

    app = create_app(settings())
    client = app.test_client()
    url = "/cds-services/l5-radiculopathy-patient-view"
    # Each repeat differs by a few characters: report readings and parsed models are memoised by their text.
    cases = {
        "scenario 1 (baseline)": lambda i: _scenario_variant(i),
        "5 x 20,000 chars, no side (137 KB)": lambda i: hostile_report_request(chars=20_000 - 10 * i),
        "5 x 20,000 chars, one mention per line": lambda i: hostile_report_request(
            chars=20_000 - 10 * i, unit=SHAPES["one mention per line"]
        ),
        "5 x 40,000 chars of unclosed HTML tags": lambda i: hostile_report_request(
            chars=40_000 - 10 * i, unit="<a ", content_type="text/html"
        ),
    }
    print("\n| hook call | body (KB) | median (ms) | x baseline |\n|---|---|---|---|")
    baseline = None
    for name, make in cases.items():
        times, size = [], 0
        for i in range(repeats):
            raw = json.dumps(make(i))
            size = len(raw)
            started = time.perf_counter()
            response = client.post(url, data=raw, content_type="application/json")
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
        median = statistics.median(times)
        baseline = baseline or median
        print(f"| {name} | {size / 1024:.0f} | {median * 1000:.1f} | {median / baseline:.1f} |")


def _scenario_variant(i: int) -> dict[str, Any]:
    body = json.loads(SCENARIO.read_text(encoding="utf-8"))
    report = body["prefetch"]["reports"]["entry"][0]["resource"]
    report["conclusion"] += " " * i
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=5_000, help="n: each shape is timed at n and 4n")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    shapes(args.chars)
    requests(args.repeats)


if __name__ == "__main__":
    main()
