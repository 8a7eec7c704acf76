"""The messages of an add as the model reads them: text, document text, and (for a vision model) images."""

from __future__ import annotations

from typing import Any

from memserver.domain.add import AddMessage
from memserver.pipeline.types import InMessage
from memserver.providers.documents.reader import DOCUMENT_TYPES, DocumentReader


async def read_messages(
    messages: list[AddMessage], *, reader: DocumentReader, vision: bool, notes: list[str]
) -> tuple[list[InMessage], list[dict[str, Any]]]:
    """(messages with their text, image parts for a vision model); what was skipped goes into `notes`."""
    out: list[InMessage] = []
    images: list[dict[str, Any]] = []
    skipped = 0
    for i, m in enumerate(messages):
        texts: list[str] = []
        for part in _parts(m.content):
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url":
                if vision:
                    images.append({"type": "image_url", "image_url": {"url": _ref(part, kind)}})
                    texts.append(f"[image {len(images)} attached]")
                else:
                    skipped += 1
            elif kind in DOCUMENT_TYPES:
                text, cut = await reader.read(str(kind), _ref(part, str(kind)))
                texts.append(f"[document]\n{text}")
                if cut:
                    notes.append(f"message {i}: a document was cut to {reader.max_chars} characters")
        out.append(InMessage(index=i, role=m.role, name=m.name, text="\n".join(t for t in texts if t)))
    if skipped:
        notes.append(
            f"{skipped} image(s) skipped: the LLM is not configured as vision-capable (MEMSERVER_LLM__VISION=true)"
        )
    return out, images


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in content]
    return []


def _ref(part: dict[str, Any], kind: str) -> str:
    """The URL (or base64 data) of a media part: {"type": k, k: {"url": ...}} or {"type": k, k: "..."}."""
    value = part.get(kind)
    if isinstance(value, dict):
        value = value.get("url") or value.get("data")
    return str(value or "")
