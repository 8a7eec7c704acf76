"""Turning Mem0 `messages` into storable text (no I/O): which messages are stored verbatim, and their hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from memserver.domain.add import content_text


@dataclass(frozen=True)
class MessageText:
    index: int
    role: str
    text: str
    name: str | None


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
