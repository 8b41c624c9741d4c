"""HTML to text that keeps the structure a reader needs: paragraphs, line breaks, list items, table cells.

Section headers ("IMPRESSION:") and list items are recognised by line downstream, so block tags become
blank lines and <br> a line break; scripts, styles and templates are not visible text. The engine uses
it to read HTML attachments; the clinical side (hooks/nlp/textprep.py) re-exports it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "tr", "table", "thead", "tbody", "tfoot", "ul", "ol", "dl", "dd", "dt"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "blockquote"),
        *("pre", "hr", "title", "caption", "form", "fieldset", "address", "main", "nav", "aside", "figure"),
    }
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template"})


class _HtmlText(HTMLParser):
    """Collect text; block tags become blank lines, <br> a line break, <li> a bullet (sentence boundaries)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" | ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS or tag == "li":
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            # Source newlines inside HTML are plain whitespace, except in <pre>.
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Strip tags but keep paragraph/line structure so section headers and sentences survive."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(parser.parts))


_HTML_SNIFF = re.compile(
    r"<\s*(?:html|body|p|div|br|table|tr|td|h[1-6]|ul|ol|li|span|b|strong)\b[^>]*>", re.I
)


def looks_like_html(text: str, content_type: str = "text/plain") -> bool:
    """Trust the declared type, but sniff: EHR feeds often label HTML narratives as text/plain."""
    return "html" in (content_type or "").lower() or bool(_HTML_SNIFF.search(text[:4000]))
