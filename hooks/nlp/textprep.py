"""Text preparation shared by every reader: HTML to text (from cds.htmltext), Unicode and whitespace.

Why keep line breaks: section headers ("IMPRESSION:") and list items are recognised by line, and sentence
splitting treats a break as a boundary unless the line looks like wrapped prose.
"""

from __future__ import annotations

import re
import unicodedata

from cds.htmltext import html_to_text, looks_like_html  # noqa: F401  (re-exported: the engine owns them)

_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_HSPACE = re.compile(r"[^\S\n]+")
_EDGE_SPACE = re.compile(r" ?\n ?")


def normalize_text(text: str) -> str:
    """Unicode-normalise and tidy whitespace while keeping line breaks (they carry section structure)."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _DASHES.sub("-", text)
    text = _HSPACE.sub(" ", text)
    return _EDGE_SPACE.sub("\n", text).strip()


def icase(pattern: str) -> re.Pattern[str]:
    """Compile a knowledge-file pattern case-insensitively (clinicians' capitalisation is not data)."""
    return re.compile(pattern, re.IGNORECASE)
