"""Report files -> text: pypdf against pdfminer.six on 1-3 page EMG reports, plus RTF and HTML readers.

    .venv/bin/python -m benchmarks.documents   (pdfminer.six: pip install '.[doc-compare]')

The PDFs are made the way tests and the demo make them (fpdf2, a text layer like an EMG machine's
export). Each library extracts the whole text of the same bytes; the table gives medians of N runs and
the ratio against pypdf from the same run. Results and the choice they led to: docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from cds.documents import read_document
from fhir_fixtures.report_files import html_report, pdf_report, rtf_report

REPORT = (
    "ELECTRODIAGNOSTIC CONSULTATION - LOWER EXTREMITY EMG/NCS\n\n"
    "INDICATION: 52-year-old man with left buttock and lateral leg pain radiating to the foot.\n\n"
    "NEEDLE EMG:\nFibrillation potentials and positive sharp waves (2+) in the left tibialis anterior, "
    "tibialis posterior and gluteus medius. Reduced recruitment in the left tibialis anterior.\n\n"
    "IMPRESSION:\nAbnormal study. Electrodiagnostic evidence of a left L5 radiculopathy with active "
    "denervation (axon loss)."
)


def median_ms(fn: Callable[[], str], runs: int) -> tuple[float, int]:
    fn()  # warm-up (imports, caches)
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(fn())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), size


def pypdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def pdfminer_text(data: bytes) -> str:
    from pdfminer.high_level import extract_text  # optional: the doc-compare extra

    return extract_text(io.BytesIO(data))


def row(
    document: str, size: int, reader: str, ms: float | None, chars: int | str = "", ratio: str = ""
) -> None:
    timing = "not installed" if ms is None else f"{ms:.2f}"
    print(f"| {document} | {size} | {reader} | {timing} | {chars} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print("| document | bytes | reader | median ms | chars | ratio to pypdf |")
    print("|---|---|---|---|---|---|")
    for pages in (1, 2, 3):
        data = pdf_report(REPORT, pages=pages)
        name = f"PDF, {pages} page(s)"
        base, chars = median_ms(lambda d=data: pypdf_text(d), args.runs)
        row(name, len(data), "pypdf", base, chars, "1.0")
        try:
            other, chars = median_ms(lambda d=data: pdfminer_text(d), args.runs)
            row(name, len(data), "pdfminer.six", other, chars, f"{other / base:.1f}")
        except ImportError:
            row(name, len(data), "pdfminer.six", None)
        ours, chars = median_ms(lambda d=data: read_document(d, "application/pdf").text, args.runs)
        row(name, len(data), "cds.documents (pypdf + limits)", ours, chars, f"{ours / base:.1f}")
    rtf = rtf_report(REPORT)
    ms, chars = median_ms(lambda: read_document(rtf, "text/rtf").text, args.runs)
    row("RTF (pandoc)", len(rtf), "cds.documents (striprtf)", ms, chars)
    html = html_report(REPORT).encode()
    ms, chars = median_ms(lambda: read_document(html, "text/html").text, args.runs)
    row("HTML", len(html), "cds.documents (markup kept)", ms, chars)


if __name__ == "__main__":
    main()
