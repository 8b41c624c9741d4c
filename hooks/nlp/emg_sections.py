"""EMG report preparation and section scoping: read the IMPRESSION, never the INDICATION.

Why: indications and histories repeat the clinical question ("r/o L5 radiculopathy"), so only
IMPRESSION/CONCLUSION/INTERPRETATION/SUMMARY sections may prove a finding. With no such header the readable
rest of the report is used and the analyser drops its confidence one level. Header wording lives in the
``sections`` block of ``knowledge/emg_text.yaml``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hooks.nlp.textprep import html_to_text, icase, looks_like_html, normalize_text

# Scanned outside reports reach the chart as OCR text: a digit read inside a word ("radicu1opathy",
# "IMPRESSI0N", "G1uteus") is the letter it resembles. Only a digit between letters changes, so levels and
# grades ("L5-S1", "4/5", "2+ fibs") never do.
_OCR_ONE = re.compile(r"(?<=[A-Za-z])1(?=[a-z])|(?<=[a-z])1(?=[A-Za-z])")
_OCR_ZERO_LOWER = re.compile(r"(?<=[A-Za-z])0(?=[a-z])|(?<=[a-z])0(?=[A-Za-z])")
_OCR_ZERO_UPPER = re.compile(r"(?<=[A-Z])0(?=[A-Z])")


def repair_ocr(text: str) -> str:
    """Undo the commonest OCR confusions of a scanned report (1 for l, 0 for o/O) inside words."""
    if not any(ch in text for ch in "01"):
        return text
    text = _OCR_ONE.sub("l", text)
    text = _OCR_ZERO_UPPER.sub("O", text)
    return _OCR_ZERO_LOWER.sub("o", text)


def prepare_report(text: str, content_type: str, *, max_chars: int, max_html_chars: int) -> tuple[str, bool]:
    """(normalised text, truncated?): strip HTML keeping block structure and cap the length."""
    truncated = False
    raw = text or ""
    if looks_like_html(raw, content_type):
        if len(raw) > max_html_chars:
            raw, truncated = raw[:max_html_chars], True
        raw = html_to_text(raw)
    elif len(raw) > 2 * max_chars:
        raw, truncated = raw[: 2 * max_chars], True
    body = repair_ocr(normalize_text(raw))
    if len(body) > max_chars:
        body, truncated = body[:max_chars], True
    return body, truncated


@dataclass(frozen=True)
class Header:
    start: int  # where the header text begins
    content: int  # where the section body begins
    name: str
    kind: str  # include | exclude | data | other


class SectionReader:
    """Compiled header patterns. ``term`` (the radiculopathy word) decides what a header-less report keeps."""

    def __init__(self, sections: Mapping[str, Any], term: re.Pattern[str]):
        self._term = term
        self._headers: list[tuple[str, str, re.Pattern[str]]] = []
        for kind in ("exclude", "include", "data", "other"):  # exclude first: "CLINICAL SUMMARY" is history
            for item in sections.get(kind) or []:
                self._headers.append((kind, item["name"], icase(rf"(?:{item['pattern']})")))
        self._generic_header = re.compile(rf"(?:{sections['generic_header']})")
        self._generic_max_words = int(sections.get("generic_header_max_words", 4))
        self._line_header = re.compile(
            r"^[ \t]*(?:[-*#>\u2022|]+[ \t]*)?(?P<h>[A-Za-z][A-Za-z0-9 /&()'.,-]{0,60}?)[ \t]*(?P<sep>:|$)"
        )
        self._inline_header = re.compile(r"(?<=[.;!?])[ \t]+(?P<h>[A-Z][A-Z /&()-]{1,50}?)[ \t]*:")

    def _classify_header(self, label: str, *, generic_ok: bool) -> tuple[str, str] | None:
        label = label.strip(" .-")
        if not label:
            return None
        for kind, name, rx in self._headers:
            if rx.fullmatch(label):
                return kind, name
        if (
            generic_ok
            and self._generic_header.fullmatch(label)
            and len(label.split()) <= self._generic_max_words
        ):
            return "other", label.upper()
        return None

    def find_headers(self, text: str) -> list[Header]:
        found: list[Header] = []
        pos = 0
        for line in text.split("\n"):
            m = self._line_header.match(line)
            if m:
                has_colon = m.group("sep") == ":"
                hit = self._classify_header(m.group("h"), generic_ok=has_colon)
                if hit:
                    found.append(Header(pos + m.start("h"), pos + m.end(), hit[1], hit[0]))
            pos += len(line) + 1
        line_spans = [(h.start, h.content) for h in found]
        line_starts = [a for a, _ in line_spans]
        for m in self._inline_header.finditer(text):
            i = bisect_right(line_starts, m.start("h")) - 1
            if i >= 0 and line_spans[i][0] <= m.start("h") < line_spans[i][1]:
                continue
            hit = self._classify_header(m.group("h"), generic_ok=True)
            if hit:
                found.append(Header(m.start("h"), m.end(), hit[1], hit[0]))
        return sorted(found, key=lambda h: h.start)

    def scope(self, text: str) -> tuple[str, str | None, bool]:
        """(text to read, section name(s), confidence dropped?) for a whole report."""
        headers = self.find_headers(text)
        if not headers:
            return text, None, True
        bodies: list[tuple[Header | None, str]] = [(None, text[: headers[0].start])]
        for i, h in enumerate(headers):
            end = headers[i + 1].start if i + 1 < len(headers) else len(text)
            bodies.append((h, text[h.content : end].strip()))
        include = [(h, b) for h, b in bodies if h is not None and h.kind == "include" and b]
        if include:
            names = list(dict.fromkeys(h.name for h, _ in include))
            return "\n\n".join(b for _, b in include), "+".join(names), False
        # No impression header: read what is neither history nor findings tables, then drop confidence.
        loose = "\n\n".join(b.strip() for h, b in bodies if (h is None or h.kind == "other") and b.strip())
        if not self._term.search(loose):
            loose = "\n\n".join(
                b.strip() for h, b in bodies if (h is None or h.kind != "exclude") and b.strip()
            )
        return loose, None, True
