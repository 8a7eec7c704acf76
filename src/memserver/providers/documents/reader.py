"""Reading the text of document parts of a message: `pdf_url`, `txt_url`, `mdx_url`, by URL or base64.

URLs are fetched through the outbound guard (`memserver.providers.net`): http(s) only, never from private,
loopback, link-local or other internal addresses unless the operator allows it
(`MEMSERVER_DOCUMENTS__ALLOW_PRIVATE_URLS`, `__ALLOWED_NETWORKS`), connected to the address that was checked,
up to `max_redirects` redirects (each checked), within one deadline: an add must not be able to make the
server probe its own network. Downloads and text are size-limited.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field

from memserver.providers.errors import ProviderError
from memserver.providers.net import (
    OutboundError,
    OutboundGuard,
    OutboundPolicy,
    Resolver,
    SystemResolver,
    parse_networks,
)

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
    timeout_s: float = 15.0  # one deadline for the whole download, redirects included
    allowed_networks: tuple[str, ...] = ()  # reachable although private (CIDRs)
    max_redirects: int = 3
    resolver: Resolver = field(default_factory=SystemResolver)
    _guard: OutboundGuard = field(init=False, repr=False)

    def __post_init__(self) -> None:
        policy = OutboundPolicy(
            subject="document URL",
            allow_private=self.allow_private,
            allowed_networks=parse_networks(self.allowed_networks),
            deadline_s=self.timeout_s,
            max_redirects=self.max_redirects,
        )
        self._guard = OutboundGuard(policy, self.resolver)

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
        try:
            got = await self._guard.fetch(url, max_body=self.max_bytes)
        except OutboundError as exc:  # our words, never an address
            raise DocumentError(str(exc)) from None
        if got.status != 200:
            raise DocumentError(f"fetching a document answered HTTP {got.status}")
        return got.body


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError):
        raise DocumentError("a pdf document could not be read") from None
