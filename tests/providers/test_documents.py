"""Document parts of a message (pdf_url, txt_url, mdx_url): text extracted, fetched only where allowed."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memserver.providers.documents.reader import DocumentError, DocumentReader


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose page draws `text` (hand-written objects; the xref offsets are computed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
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


@pytest.fixture(scope="module")
def docs_url() -> Iterator[str]:
    """A document server on 127.0.0.1 (loopback: refused unless private URLs are allowed)."""
    files = {"/note.txt": b"The user's passport expires in March 2027.", "/big.txt": b"x" * 5000}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_base64_text_and_pdf_are_read() -> None:
    reader = DocumentReader()
    text, cut = await reader.read("txt_url", base64.b64encode(b"Plain notes about tea.").decode())
    assert (text, cut) == ("Plain notes about tea.", None)
    data_uri = "data:application/pdf;base64," + base64.b64encode(minimal_pdf("Allergic to penicillin")).decode()
    text, _ = await reader.read("pdf_url", data_uri)
    assert "Allergic to penicillin" in text


async def test_loopback_and_private_urls_are_refused_by_default(docs_url: str) -> None:
    reader = DocumentReader()
    for url in (f"{docs_url}/note.txt", "http://10.0.0.1/x.txt", "http://[::1]/x.txt", "file:///etc/passwd"):
        with pytest.raises(DocumentError):
            await reader.read("txt_url", url)


async def test_allowed_urls_are_fetched_with_size_and_text_limits(docs_url: str) -> None:
    reader = DocumentReader(allow_private=True, max_bytes=1000, max_chars=20)
    text, cut = await reader.read("mdx_url", f"{docs_url}/note.txt")
    assert (text, cut) == ("The user's passport ", "chars")
    with pytest.raises(DocumentError, match="larger than 1000 bytes"):
        await reader.read("txt_url", f"{docs_url}/big.txt")
    with pytest.raises(DocumentError, match="HTTP 404"):
        await reader.read("txt_url", f"{docs_url}/missing.txt")


async def test_garbage_is_a_clear_error() -> None:
    reader = DocumentReader()
    with pytest.raises(DocumentError, match="neither an http"):
        await reader.read("txt_url", "%%% not base64 %%%")
    with pytest.raises(DocumentError, match="pdf document could not be read"):
        await reader.read("pdf_url", base64.b64encode(b"not a pdf").decode())
