"""Reading the text of document parts of a message: `pdf_url`, `txt_url`, `mdx_url`, by URL or base64.

URLs are fetched over http(s) only, and never from private, loopback or link-local addresses unless
the operator allows it (`MEMSERVER_DOCUMENTS__ALLOW_PRIVATE_URLS`): an add must not be able to make
the server probe its own network. Downloads and text are size-limited, and PDFs are parsed in a
child process under CPU, memory, page and output limits (`pdf.py`), never in this one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from memserver.domain.add import DOCUMENT_PARTS
from memserver.providers.documents.errors import DocumentError
from memserver.providers.documents.pdf import PdfParser

DOCUMENT_TYPES = DOCUMENT_PARTS
__all__ = ["DOCUMENT_TYPES", "DocumentError", "DocumentReader"]


@dataclass
class DocumentReader:
    allow_private: bool = False
    max_bytes: int = 5_000_000
    max_chars: int = 50_000
    timeout_s: float = 15.0

    # What one add may ask of the reader (services/attachments.py enforces them; the HTTP edge refuses
    # the counts and inline sizes before any work).
    max_parts: int = 5
    max_total_chars: int = 100_000
    deadline_s: float = 30.0
    max_images: int = 5
    max_image_bytes: int = 2_000_000
    pdf: PdfParser = field(default_factory=PdfParser)

    async def read(self, kind: str, ref: str, *, max_chars: int | None = None) -> tuple[str, str | None]:
        """The text of a document given by URL or base64 (`data:` URI or bare), at most `max_chars` (default
        and ceiling: the reader's own) characters; (text, None) or (text, why it was cut: "chars"/"pages")."""
        limit = self.max_chars if max_chars is None else max(0, min(max_chars, self.max_chars))
        data = self._decode_inline(ref) if not ref.startswith(("http://", "https://")) else await self._fetch(ref)
        text, cut = await self._pdf_text(data, limit) if kind == "pdf_url" else (data.decode("utf-8", "replace"), None)
        text = text.replace("\x00", "")
        return (text[:limit], cut or "chars") if len(text) > limit else (text, cut)

    def _decode_inline(self, ref: str) -> bytes:
        payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
        if len(payload) > self.max_bytes * 4 // 3 + 4:
            raise DocumentError(f"an inline document is larger than {self.max_bytes} bytes")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError("a document part is neither an http(s) URL nor valid base64") from None

    async def _pdf_text(self, data: bytes, max_chars: int) -> tuple[str, str | None]:
        """Parsed in a child process under CPU, memory, page and output limits (`pdf.py`), never here."""
        out = await self.pdf.text(data, max_chars=max_chars)
        return out.text, out.cut

    async def _fetch(self, url: str) -> bytes:
        await self._check_host(url)
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client,
                client.stream("GET", url) as resp,
            ):
                if resp.status_code != 200:
                    raise DocumentError(f"fetching a document answered HTTP {resp.status_code}")
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DocumentError(f"a document is larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise DocumentError(f"fetching a document timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError:
            raise DocumentError("a document URL could not be fetched") from None

    async def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DocumentError("document URLs must be http(s)")
        if self.allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
            )
        except OSError:
            raise DocumentError("a document URL's host could not be resolved") from None
        for info in infos:
            ip = ipaddress.ip_address(info[4][0])
            if not ip.is_global:
                raise DocumentError("document URLs on private, loopback or link-local addresses are not fetched")
