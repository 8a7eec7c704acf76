"""Document parts of a message (pdf_url, txt_url, mdx_url): text extracted, fetched only where allowed."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memserver.providers.documents.reader import DocumentError, DocumentReader
from tests.fakes.pdfs import text_pdf


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
    data_uri = "data:application/pdf;base64," + base64.b64encode(text_pdf("Allergic to penicillin")).decode()
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


def test_the_defaults_of_the_reader_and_the_edge_are_the_settings() -> None:
    """The reader (and its PDF parser) and the HTTP edge's limits start from the documented settings."""
    from memserver.config import DocumentSettings
    from memserver.domain.limits import Limits

    d, r, edge = DocumentSettings(), DocumentReader(), Limits()
    assert (r.max_bytes, r.max_chars, r.timeout_s) == (d.max_bytes, d.max_chars, d.timeout_s)
    assert (r.max_parts, r.max_total_chars, r.deadline_s) == (d.max_parts, d.max_total_chars, d.deadline_s)
    assert (r.max_images, r.max_image_bytes) == (d.max_images, d.max_image_bytes)
    assert (r.pdf.max_pages, r.pdf.cpu_s, r.pdf.memory_mb, r.pdf.timeout_s, r.pdf.concurrency) == (
        d.pdf_max_pages,
        d.pdf_cpu_s,
        d.pdf_memory_mb,
        d.pdf_timeout_s,
        d.pdf_concurrency,
    )
    assert (edge.max_document_parts, edge.max_document_bytes, edge.max_images, edge.max_image_bytes) == (
        d.max_parts,
        d.max_bytes,
        d.max_images,
        d.max_image_bytes,
    )
