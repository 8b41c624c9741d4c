"""The text one hook call may read, across all its resources and attachments.

Why a budget per call and not only per text: each text is capped (``limits.max_chars``), but a request may
carry hundreds of reports, notes and attachments, and reading costs CPU in proportion to the characters
read (about 1-3 microseconds each, linear since issue 12). One caller could otherwise occupy a worker for
as long as its body is large. The evidence layer creates one :class:`TextBudget` per hook call
(``EmgTextAnalyzer.budget()``, sized by ``limits.max_chars_per_call`` in ``knowledge/emg_text.yaml``) and
passes every text through :meth:`TextBudget.take` before reading it. Once the budget is spent, further texts
read as empty, and ``exhausted`` tells the caller to say so (log it, mark the finding truncated).

Take the budget before any memoised reader: the cache then keys on the text actually read, so a text cut
short in one call is never served whole, or cut, to another.
"""

from __future__ import annotations


class TextBudget:
    """Characters left to read in one hook call. Not thread-safe: one per call, used by one thread."""

    __slots__ = ("limit", "used", "cut")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("a text budget cannot be negative")
        self.limit = limit
        self.used = 0
        self.cut = 0  # texts shortened or skipped because the budget ran out

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    @property
    def exhausted(self) -> bool:
        """True once some text was shortened or skipped for want of budget."""
        return self.cut > 0

    def take(self, text: str | None) -> str:
        """The part of ``text`` that still fits (all of it while the budget lasts), charged."""
        if not text:
            return ""
        room = self.limit - self.used
        if len(text) <= room:
            self.used += len(text)
            return text
        self.cut += 1
        if room <= 0:
            return ""
        self.used = self.limit
        return text[:room]

    def __repr__(self) -> str:
        return f"TextBudget(limit={self.limit}, used={self.used}, cut={self.cut})"
