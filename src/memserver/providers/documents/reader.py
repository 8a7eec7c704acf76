"""Reading the text of document parts of a message: `pdf_url`, `txt_url`, `mdx_url`, by URL or base64;
and the images of `image_url` parts, fetched the same way, for a vision model to receive inline.

URLs are fetched through the outbound guard (`memserver.providers.net`): http(s) only, never from private,
loopback, link-local or other internal addresses unless the operator allows it
(`MEMSERVER_DOCUMENTS__ALLOW_PRIVATE_URLS`, `__ALLOWED_NETWORKS`), connected to the address that was checked,
up to `max_redirects` redirects (each checked), within one deadline: an add must not be able to make the
server probe its own network. Downloads and text are size-limited, and PDFs are parsed in a child process
under CPU, memory, page and output limits (`pdf.py`), never in this one.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace

from memserver.domain.add import DOCUMENT_PARTS
from memserver.providers.documents.errors import DocumentError
from memserver.providers.documents.pdf import PdfParser
from memserver.providers.net import (
    OutboundError,
    OutboundGuard,
    OutboundPolicy,
    Resolver,
    SystemResolver,
    TooLarge,
    parse_networks,
)

DOCUMENT_TYPES = DOCUMENT_PARTS
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # base64 has no ':', so a bare payload never matches
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The MIME type of an image a vision model reads (PNG, JPEG, GIF, WebP), by its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)


__all__ = ["DOCUMENT_TYPES", "DocumentError", "DocumentReader"]


@dataclass
class DocumentReader:
    allow_private: bool = False
    max_bytes: int = 5_000_000
    max_chars: int = 50_000
    timeout_s: float = 15.0  # one deadline for the whole download, redirects included
    allowed_networks: tuple[str, ...] = ()  # reachable although private (CIDRs)
    max_redirects: int = 3
    resolver: Resolver = field(default_factory=SystemResolver)
    # What one add may ask of the reader (services/attachments.py enforces them; the HTTP edge refuses
    # the counts and inline sizes before any work).
    max_parts: int = 5
    max_total_chars: int = 100_000
    deadline_s: float = 30.0
    max_images: int = 5
    max_image_bytes: int = 2_000_000
    pdf: PdfParser = field(default_factory=PdfParser)

    _guard: OutboundGuard = field(init=False, repr=False)
    _image_guard: OutboundGuard = field(init=False, repr=False)

    def __post_init__(self) -> None:
        policy = OutboundPolicy(
            subject="document URL",
            allow_private=self.allow_private,
            allowed_networks=parse_networks(self.allowed_networks),
            deadline_s=self.timeout_s,
            max_redirects=self.max_redirects,
        )
        self._guard = OutboundGuard(policy, self.resolver)
        self._image_guard = OutboundGuard(replace(policy, subject="URL of an image"), self.resolver)

    async def image(self, ref: str) -> str:
        """An image part as a vision model may receive it: a `data:` URL. An http(s) URL is fetched here,
        through the same guard as documents (at most `max_image_bytes`), never handed to the model: a
        self-hosted vision server would fetch it from inside the operator's network, past the URL policy.
        An inline image (`data:` URL, or bare base64 of a PNG, JPEG, GIF or WebP) is passed on; any other
        scheme (`file:`, `ftp:`, ...) is refused."""
        if ref.startswith("data:"):
            return ref
        if ref.startswith(("http://", "https://")):
            data = await self._fetch_image(ref)
        elif _SCHEME.match(ref):
            raise DocumentError("an image must be an http(s) URL or inline (a data: URL or base64)")
        else:
            data = self._decode_inline(ref, self.max_image_bytes, "image")
        mime = image_type(data)
        if mime is None:
            what = "an image URL did not answer with" if ref.startswith("http") else "an inline image is not"
            raise DocumentError(f"{what} an image (PNG, JPEG, GIF or WebP)")
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"

    async def _fetch_image(self, url: str) -> bytes:
        try:
            got = await self._image_guard.fetch(url, max_body=self.max_image_bytes)
        except TooLarge:
            raise DocumentError(
                f"an image is larger than {self.max_image_bytes} bytes (MEMSERVER_DOCUMENTS__MAX_IMAGE_BYTES)"
            ) from None
        except OutboundError as exc:  # our words, never an address
            raise DocumentError(str(exc)) from None
        if got.status != 200:
            raise DocumentError(f"fetching an image answered HTTP {got.status}")
        return got.body

    async def read(self, kind: str, ref: str, *, max_chars: int | None = None) -> tuple[str, str | None]:
        """The text of a document given by URL or base64 (`data:` URI or bare), at most `max_chars` (default
        and ceiling: the reader's own) characters; (text, None) or (text, why it was cut: "chars"/"pages")."""
        limit = self.max_chars if max_chars is None else max(0, min(max_chars, self.max_chars))
        data = self._decode_inline(ref) if not ref.startswith(("http://", "https://")) else await self._fetch(ref)
        text, cut = await self._pdf_text(data, limit) if kind == "pdf_url" else (data.decode("utf-8", "replace"), None)
        text = text.replace("\x00", "")
        return (text[:limit], cut or "chars") if len(text) > limit else (text, cut)

    def _decode_inline(self, ref: str, max_bytes: int | None = None, what: str = "document") -> bytes:
        limit = self.max_bytes if max_bytes is None else max_bytes
        payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
        if len(payload) > limit * 4 // 3 + 4:
            raise DocumentError(f"an inline {what} is larger than {limit} bytes")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError(f"a {what} part is neither an http(s) URL nor valid base64") from None

    async def _pdf_text(self, data: bytes, max_chars: int) -> tuple[str, str | None]:
        """Parsed in a child process under CPU, memory, page and output limits (`pdf.py`), never here."""
        out = await self.pdf.text(data, max_chars=max_chars)
        return out.text, out.cut

    async def _fetch(self, url: str) -> bytes:
        try:
            got = await self._guard.fetch(url, max_body=self.max_bytes)
        except OutboundError as exc:  # our words, never an address
            raise DocumentError(str(exc)) from None
        if got.status != 200:
            raise DocumentError(f"fetching a document answered HTTP {got.status}")
        return got.body
