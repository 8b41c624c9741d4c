"""Report files as EHRs store them (PDF, RTF, HTML, plain text in another charset), made from report text.

Tests, `make demo` and the benchmarks generate the files here with maintained libraries (fpdf2 for PDF,
pandoc through pypandoc-binary for RTF) instead of keeping hand-written bytes: a PDF's text layer is what
an electrodiagnostic machine's export has, and an image-only PDF is what a scanner makes.
"""

from __future__ import annotations

import html
import io
import textwrap

# NCS/EMG table rows: what pads a real report to 2-3 pages between its sections.
_TABLE_ROW = (
    "{nerve:<28} lat {lat:.1f} ms   amp {amp:.1f} mV   CV {cv:.0f} m/s   F-wave {fw:.1f} ms   normal limits"
)
_NERVES = ("L fibular motor (EDB)", "L tibial motor (AH)", "L sural sensory", "L sup fibular sensory")


def padded(text: str, pages: int = 1) -> str:
    """The report with NCS table rows inserted before its impression, so it fills about `pages` pages."""
    if pages <= 1:
        return text
    rows = [
        _TABLE_ROW.format(nerve=_NERVES[i % 4], lat=3 + i % 5 * 0.3, amp=4 + i % 7, cv=42 + i % 9, fw=48.5)
        for i in range(46 * (pages - 1))
    ]
    head, sep, tail = text.partition("IMPRESSION:")
    table = "NCS DATA:\n" + "\n".join(rows) + "\n\n"
    return f"{head}{table}{sep}{tail}" if sep else f"{text}\n\n{table}"


def pdf_report(text: str, *, pages: int = 1, user_password: str | None = None) -> bytes:
    """A PDF with a text layer (an EDX machine's export); `user_password` encrypts it (RC4, 128-bit)."""
    from fpdf import FPDF  # test/demo dependency (fpdf2), not needed by the service

    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in padded(text, pages).split("\n"):
        pdf.multi_cell(0, 5, line.encode("latin-1", "replace").decode("latin-1") or " ")
        pdf.set_x(pdf.l_margin)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    return bytes(pdf.output())


def scanned_pdf_report(text: str) -> bytes:
    """An image-only PDF (a scanned page): the report is pixels, there is no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("L", (1275, 1650), 255)
    draw = ImageDraw.Draw(image)
    y = 60
    for paragraph in text.split("\n"):
        for line in textwrap.wrap(paragraph, 110) or [""]:
            draw.text((60, y), line, fill=0)
            y += 14
    pdf = FPDF(format="Letter")
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=pdf.w, h=pdf.h)
    return bytes(pdf.output())


def rtf_report(text: str) -> bytes:
    """An RTF document (as word processors and many EHR note editors save it), written by pandoc."""
    import pypandoc  # test/demo dependency (pypandoc-binary bundles pandoc)

    markdown = "\n\n".join(p.replace("\n", "  \n") for p in text.split("\n\n"))
    rtf = pypandoc.convert_text(markdown, "rtf", format="markdown", extra_args=["--standalone"])
    return rtf.encode("ascii", "backslashreplace")


def html_report(text: str) -> str:
    """An HTML rendering: a heading, one paragraph per block, line breaks kept, a style block to ignore."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    body = "\n".join(
        f"<p>{'<br>'.join(html.escape(line) for line in block.split(chr(10)))}</p>" for block in blocks[1:]
    )
    return (
        "<!DOCTYPE html><html><head><title>EMG report</title><style>p { margin: 0 }</style></head>"
        f"<body><h1>{html.escape(blocks[0])}</h1>\n{body}\n<script>var x = 'not text';</script></body></html>"
    )


def pdf_bomb(megabytes: int = 200) -> bytes:
    """A one-page report whose text content stream is repeated until it inflates to `megabytes` MB.

    Compressed it stays small (a few hundred KB), so it passes any size cap on the wire; pypdf writes it.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_report("IMPRESSION: L5 radiculopathy."))))
    page = writer.pages[0]
    ops = page.get_contents().get_data()
    stream = DecodedStreamObject()
    stream.set_data(ops * max(1, megabytes * 1024 * 1024 // len(ops)))
    page[NameObject("/Contents")] = writer._add_object(stream.flate_encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first part of a file, as a broken transfer or a partial scan upload leaves it."""
    return data[: max(1, int(len(data) * keep))]
