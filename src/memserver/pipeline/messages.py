"""Turning Mem0 `messages` into storable text (no I/O)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


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
