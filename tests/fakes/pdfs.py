"""PDFs written by hand for the document tests: a readable one, compression bombs and a CPU bomb.

Objects are numbered in order and the xref offsets computed, so pypdf reads them without repairs.
"""

from __future__ import annotations

import zlib

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def build(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (object 1 is the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, *, flate: bool = False) -> bytes:
    if flate:
        data = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def pages_pdf(contents: list[int], streams: list[bytes]) -> bytes:
    """Pages whose content is streams[contents[i]]: objects 1 catalog, 2 pages, 3 font, then the streams,
    then the pages (pages may share one stream)."""
    first_page = 4 + len(streams)
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(len(contents)))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 3 0 R >> >> >>"
    )
    return build(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(contents),
            FONT,
            *streams,
            *[page % (4 + c) for c in contents],
        ]
    )


def text_pdf(*pages: str) -> bytes:
    """One page per text, each drawing its text."""
    streams = [stream(f"BT /F1 12 Tf 72 720 Td ({t}) Tj ET".encode()) for t in pages]
    return pages_pdf(list(range(len(pages))), streams)


def compression_bomb(inflated_mb: int) -> bytes:
    """One page whose FlateDecode content stream inflates to `inflated_mb` MB of zeros (~1 KB per MB)."""
    z = zlib.compressobj(9)
    chunk = b"\x00" * (1 << 20)
    data = b"".join([*(z.compress(chunk) for _ in range(inflated_mb)), z.flush()])
    body = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return pages_pdf([0], [body])


def cpu_bomb(pages: int) -> bytes:
    """~1.4 KB of PDF that keeps pypdf's text extraction busy ~0.65 s of CPU per page here (50,000 empty
    `Tj` operators in one compressed content stream that every page shares) and produces no text."""
    content = b"BT /F1 12 Tf " + b"() Tj " * 50_000 + b"ET"
    return pages_pdf([0] * pages, [stream(content, flate=True)])
