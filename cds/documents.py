"""Report files -> text: plain text in any charset, HTML, RTF and PDF with a text layer, each bounded.

The engine turns documents into text so the clinical side only ever reads text. Every reader is bounded
in the bytes it accepts and in the work it may do, so a PDF bomb or a 50 MB RTF cannot stall a worker:
- PDF (pypdf: 7-16x faster than pdfminer.six on 1-3 page reports, `benchmarks/documents.py`): at most
  `max_pdf_pages` pages, pypdf's own decompression and parsing limits lowered to what a report needs,
  and the call's reading deadline checked between pages;
- RTF (striprtf): embedded pictures (long hex runs) are dropped before parsing and the rest is capped,
  since striprtf reads about 5 MB/s;
- HTML stays markup (the EMG reader uses its block structure), re-encoded as UTF-8;
- text/plain is decoded with its declared charset, else UTF-8 (BOMs honoured), else Windows-1252.
What cannot be read raises `Unreadable` with a reason code, never anything else.
"""

from __future__ import annotations

import codecs
import io
import re
import time
from dataclasses import dataclass

from pypdf import Configuration, PdfReader, apply_configuration
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError
from striprtf.striprtf import rtf_to_text

PLAIN = "text/plain"
HTML = "text/html"
PDF = "application/pdf"
RTF_TYPES = frozenset({"text/rtf", "application/rtf", "application/x-rtf", "text/richtext"})
HTML_TYPES = frozenset({HTML, "application/xhtml+xml"})
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
_HEX_RUN = re.compile(rb"[0-9A-Fa-f\r\n]{512,}")  # picture data inside RTF
_MIN_PDF_TEXT = 20  # fewer visible characters than this: a scan, no text layer
# A 1-3 page report needs a few MB of decoded streams and a few thousand content operators.
_PDF_LIMITS = Configuration().with_overwrites(
    zlib_maximum_output_length=16_000_000,
    maximum_declared_stream_length=16_000_000,
    array_based_stream_maximum_output_length=16_000_000,
    lzw_maximum_output_length=16_000_000,
    run_length_maximum_output_length=16_000_000,
    stream_decoding_work_maximum_length=32_000_000,
    stream_parsing_work_maximum_count=100_000,
    page_tree_maximum_entries=10_000,
    xform_maximum_invocations_per_extraction=200,
    disable_legacy_handling=True,
)


class Unreadable(Exception):
    """A document that yields no text; `reason` is a short code (see README, report attachments)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DocumentText:
    text: str
    content_type: str  # text/plain or text/html (markup kept)
    source_type: str  # the type it was read as: application/pdf, text/rtf, text/plain, ...


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024
    max_chars: int = 100_000
    max_pdf_pages: int = 20
    max_rtf_bytes: int = 1024 * 1024  # after pictures are dropped: about 0.2 s of striprtf


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """('type/subtype' lower-cased, charset or None) of a Content-Type value."""
    if not content_type:
        return "", None
    parts = [p.strip() for p in str(content_type).split(";")]
    charset = next(
        (p.split("=", 1)[1].strip().strip('"') for p in parts[1:] if p.lower().startswith("charset=")), None
    )
    return parts[0].lower(), charset


def sniff(data: bytes) -> str:
    """The type of a document labelled generically (octet-stream), from its first bytes."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"{\\rtf"):
        return "text/rtf"
    if re.match(rb"(?i)(<!doctype html|<html|<\?xml[^>]*>\s*<html)", head):
        return HTML
    return ""


def read_document(
    data: bytes, content_type: str | None, limits: Limits = Limits(), deadline: float | None = None
) -> DocumentText:
    """Text of a document; `deadline` (time.monotonic()) bounds the PDF page loop."""
    mtype, charset = media_type(content_type)
    if mtype in GENERIC_TYPES:
        mtype = sniff(data) or mtype
    if len(data) > limits.max_bytes:
        raise Unreadable("too-large")
    if not data.strip():
        raise Unreadable("empty")
    if mtype == PLAIN or mtype == "text/markdown":
        return DocumentText(decode_text(data, charset)[: limits.max_chars], PLAIN, mtype)
    if mtype in HTML_TYPES:
        markup = decode_text(data, charset)
        return DocumentText(markup[: limits.max_chars * 4], HTML, mtype)
    if mtype in RTF_TYPES:
        return DocumentText(_rtf_text(data, limits)[: limits.max_chars], PLAIN, mtype)
    if mtype == PDF:
        return DocumentText(_pdf_text(data, limits, deadline), PLAIN, mtype)
    raise Unreadable("unsupported-type")


def decode_text(data: bytes, charset: str | None) -> str:
    """Declared charset first; else a BOM, UTF-8, or Windows-1252 (what Windows-based EHR feeds send)."""
    if charset:
        try:
            codecs.lookup(charset)
            return data.decode(charset, errors="replace")
        except LookupError:
            pass  # an unknown charset name: fall through to detection
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _rtf_text(data: bytes, limits: Limits) -> str:
    if not data.lstrip().startswith(b"{\\rtf"):
        raise Unreadable("corrupt")
    if not data.rstrip(b"\0 \t\r\n").endswith(b"}"):
        raise Unreadable("truncated")  # the document group never closes: a partial file
    stripped = _HEX_RUN.sub(b"", data)[: limits.max_rtf_bytes]
    # RTF is 7-bit with \'hh escapes in the document's code page; striprtf decodes those itself.
    text = rtf_to_text(stripped.decode("latin-1"), errors="replace")
    if not text.strip():
        raise Unreadable("empty")
    return text


def _pdf_text(data: bytes, limits: Limits, deadline: float | None) -> str:
    if b"%PDF-" not in data[:1024]:
        raise Unreadable("corrupt")
    try:
        with apply_configuration(_PDF_LIMITS):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not _decrypts_without_password(reader):
                raise Unreadable("encrypted")
            parts: list[str] = []
            size = 0
            for index, page in enumerate(reader.pages):
                if index >= limits.max_pdf_pages or size >= limits.max_chars:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    if not parts:
                        raise Unreadable("read-budget")
                    break
                text = page.extract_text() or ""
                parts.append(text)
                size += len(text)
    except Unreadable:
        raise
    except FileNotDecryptedError as exc:
        raise Unreadable("encrypted") from exc
    except LimitReachedError as exc:
        raise Unreadable("too-complex") from exc
    except Exception as exc:  # pypdf on hostile input (PyPdfError, ValueError, KeyError, ...): unreadable
        raise Unreadable("corrupt") from exc
    text = "\n".join(parts)
    if len(re.sub(r"\s+", "", text)) < _MIN_PDF_TEXT:
        raise Unreadable("no-text-layer")
    return text[: limits.max_chars]


def _decrypts_without_password(reader: PdfReader) -> bool:
    """An owner-password-only PDF opens with an empty user password, as in every viewer."""
    try:
        return bool(reader.decrypt(""))
    except (PyPdfError, NotImplementedError, ValueError):
        return False
