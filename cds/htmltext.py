"""HTML to text that keeps the structure a reader needs: paragraphs, line breaks, list items, table cells.

Section headers ("IMPRESSION:") and list items are recognised by line downstream, so block tags become
blank lines and <br> a line break; scripts, styles and templates are not visible text. The engine uses
it to read HTML attachments; the clinical side (hooks/nlp/textprep.py) re-exports it.
"""

from __future__ import annotations

import html
import re

_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "tr", "table", "thead", "tbody", "tfoot", "ul", "ol", "dl", "dd", "dt"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "blockquote"),
        *("pre", "hr", "title", "caption", "form", "fieldset", "address", "main", "nav", "aside", "figure"),
    }
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template"})


_TAG = re.compile(r"<(/?)([A-Za-z][^\t\n\r\f />\x00]*)")
# The rest of a tag up to its ">": quoted attribute values may hold ">". Possessive, so a tag that never
# closes fails after one scan instead of backtracking.
_TAG_REST = re.compile(r"""(?:[^>"'=]++|=\s*+"[^"]*+"|=\s*+'[^']*+'|[="'])*+>""")
_RAW_END = {tag: re.compile(rf"</{tag}\b[^>]*>", re.IGNORECASE) for tag in ("script", "style")}
_SPACE = re.compile(r"\s+")


class _HtmlText:
    """Collect text; block tags become blank lines, <br> a line break, <li> a bullet (sentence boundaries).

    Why not html.parser: on markup that opens tags or comments and never closes them ("<a <a <a ..."), the
    standard library's parser rescans the rest of the input at every "<" (Python < 3.13.4): 100,000 characters
    took 66 s. This tokenizer moves forward only, so its cost is linear, and it keeps what the reader needs:
    tag names, text with character references decoded, script and style skipped. Markup opened and never
    closed is kept as text, as the standard library's parser kept it.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def feed(self, markup: str) -> None:
        pos, n = 0, len(markup)
        while pos < n:
            lt = markup.find("<", pos)
            if lt == -1:
                self._data(markup[pos:])
                return
            if lt > pos:
                self._data(markup[pos:lt])
            pos = self._markup(markup, lt)

    def _markup(self, markup: str, lt: int) -> int:
        """Consume the markup starting at ``lt`` (a "<"); returns where the text resumes."""
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            return self._unclosed(markup, lt) if end == -1 else end + 3
        if markup.startswith("<![CDATA[", lt):
            end = markup.find("]]>", lt + 9)
            return self._unclosed(markup, lt) if end == -1 else end + 3
        tag = _TAG.match(markup, lt)
        if tag is None:
            if not markup.startswith(("<!", "<?", "</"), lt):
                if not self._skip:
                    self.parts.append("<")  # "a < b": a literal less-than sign
                return lt + 1
            close = markup.find(">", lt + 1)  # <!DOCTYPE ...>, <?xml ...?>, "</ p>": nothing to read
            return self._unclosed(markup, lt) if close == -1 else close + 1
        rest = _TAG_REST.match(markup, tag.end())
        if rest is None:
            return self._unclosed(markup, lt)
        after = rest.end()
        name = tag.group(2).lower()
        if tag.group(1):
            self._end(name)
        elif markup[after - 2] == "/" and after - 2 >= tag.end():
            self._startend(name)
        else:
            self._start(name)
            raw_end = _RAW_END.get(name)
            if raw_end is not None:  # script/style: raw text up to the closing tag
                found = raw_end.search(markup, after)
                if found is None:
                    return len(markup)
                self._end(name)
                return found.end()
        return after

    def _unclosed(self, markup: str, lt: int) -> int:
        """Markup opened and never closed: the rest is text, as the standard library's parser had it."""
        self._data(markup[lt:])
        return len(markup)

    def _start(self, tag: str) -> None:
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

    def _startend(self, tag: str) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def _end(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS or tag == "li":
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def _data(self, raw: str) -> None:
        if not self._skip:
            data = html.unescape(raw)
            # Source newlines inside HTML are plain whitespace, except in <pre>.
            self.parts.append(data if self._pre else _SPACE.sub(" ", data))


def html_to_text(markup: str) -> str:
    """Strip tags but keep paragraph/line structure so section headers and sentences survive."""
    parser = _HtmlText()
    parser.feed(markup)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(parser.parts))


_HTML_SNIFF = re.compile(r"<\s*(?:html|body|p|div|br|table|tr|td|h[1-6]|ul|ol|li|span|b|strong)\b", re.I)


def looks_like_html(text: str, content_type: str = "text/plain") -> bool:
    """Trust the declared type, but sniff: EHR feeds often label HTML narratives as text/plain.

    A tag opening followed, anywhere later, by a ">" (``[^>]*>`` in one pattern rescanned the rest of the
    sample at every "<p").
    """
    if "html" in (content_type or "").lower():
        return True
    sample = text[:4000]
    opening = _HTML_SNIFF.search(sample)
    return opening is not None and sample.find(">", opening.end()) != -1
