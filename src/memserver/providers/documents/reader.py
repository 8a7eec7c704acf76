"""Reading the text of document parts of a message: `pdf_url`, `txt_url`, `mdx_url`, by URL or base64.

URLs are fetched over http(s) only, and never from private, loopback or link-local addresses unless
the operator allows it (`MEMSERVER_DOCUMENTS__ALLOW_PRIVATE_URLS`): an add must not be able to make
the server probe its own network. Downloads and text are size-limited.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from memserver.providers.errors import ProviderError

DOCUMENT_TYPES = ("pdf_url", "txt_url", "mdx_url")


class DocumentError(ProviderError):
    """A document part could not be read (the message says why, in our words)."""

    status_code = 400
    code = "document_unreadable"

    def __init__(self, message: str):
        super().__init__(message, public=True)  # always our own words


@dataclass
class DocumentReader:
    allow_private: bool = False
    max_bytes: int = 5_000_000
    max_chars: int = 50_000
    timeout_s: float = 15.0

    async def read(self, kind: str, ref: str) -> tuple[str, bool]:
        """The text of a document given by URL or base64 (`data:` URI or bare); (text, was it cut)."""
        data = self._decode_inline(ref) if not ref.startswith(("http://", "https://")) else await self._fetch(ref)
        text = _pdf_text(data) if kind == "pdf_url" else data.decode("utf-8", "replace")
        text = text.replace("\x00", "")
        return (text[: self.max_chars], True) if len(text) > self.max_chars else (text, False)

    def _decode_inline(self, ref: str) -> bytes:
        payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
        if len(payload) > self.max_bytes * 4 // 3 + 4:
            raise DocumentError(f"an inline document is larger than {self.max_bytes} bytes")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError("a document part is neither an http(s) URL nor valid base64") from None

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


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError):
        raise DocumentError("a pdf document could not be read") from None
