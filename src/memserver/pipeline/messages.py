"""Turning Mem0 `messages` into storable text (no I/O)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from memserver.domain.add import DOCUMENT_PARTS


@dataclass(frozen=True)
class MessageText:
    index: int
    role: str
    text: str
    name: str | None


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Accept a string, one message object, or a list of them (as the SDKs do client-side)."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, dict):
        return [messages]
    if isinstance(messages, list):
        return [m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages]
    raise ValueError("messages must be a string, a message object or a list of messages")


def content_text(content: Any) -> str | None:
    """The text of a message's content; images and other media parts are skipped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text" and p.get("text")]
        parts += [p for p in content if isinstance(p, str)]
        return "\n".join(str(p) for p in parts) if parts else None
    return None


def verbatim_texts(messages: list[dict[str, Any]]) -> list[MessageText]:
    """Each non-system message with text content, verbatim and in order."""
    out: list[MessageText] = []
    for i, m in enumerate(messages):
        role = str(m.get("role") or "user")
        if role == "system":
            continue
        text = content_text(m.get("content"))
        if text is None or not text.strip():
            continue
        name = m.get("name")
        out.append(MessageText(index=i, role=role, text=text, name=str(name) if name else None))
    return out


def text_hash(text: str) -> str:
    """md5 hex of the text, as Mem0 reports `hash`."""
    return hashlib.md5(text.encode()).hexdigest()


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of parts: a string is one text part, a lone part object a list of one."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in content]
    return []


def media_ref(part: dict[str, Any], kind: str) -> str:
    """The URL (or base64 data) of a media part: {"type": k, k: {"url": ...}} or {"type": k, k: "..."}."""
    value = part.get(kind)
    if isinstance(value, dict):
        value = value.get("url") or value.get("data")
    return str(value or "")


def inline_size(ref: str) -> int:
    """Bytes of a base64 media reference (a `data:` URI or bare base64) once decoded; 0 for an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        return 0
    payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
    return len(payload) * 3 // 4 - payload.endswith("=") - payload.endswith("==")


def check_media(
    contents: list[Any], *, max_documents: int, max_document_bytes: int, max_images: int, max_image_bytes: int
) -> None:
    """Raise ValueError naming the limit an add's media parts exceed: how many documents and images it
    carries and how large its inline ones are; all known before any document is fetched or parsed."""
    documents = images = 0
    for content in contents:
        for part in content_parts(content):
            kind = part.get("type")
            if kind in DOCUMENT_PARTS:
                documents += 1
                if documents > max_documents:
                    raise ValueError(
                        f"an add may carry at most {max_documents} document parts (pdf_url, txt_url, mdx_url) "
                        "(MEMSERVER_DOCUMENTS__MAX_PARTS)"
                    )
                if inline_size(media_ref(part, str(kind))) > max_document_bytes:
                    raise ValueError(
                        f"an inline document is larger than {max_document_bytes} bytes (MEMSERVER_DOCUMENTS__MAX_BYTES)"
                    )
            elif kind == "image_url":
                images += 1
                if images > max_images:
                    raise ValueError(f"an add may carry at most {max_images} images (MEMSERVER_DOCUMENTS__MAX_IMAGES)")
                if inline_size(media_ref(part, kind)) > max_image_bytes:
                    raise ValueError(
                        f"an inline image is larger than {max_image_bytes} bytes (MEMSERVER_DOCUMENTS__MAX_IMAGE_BYTES)"
                    )
