"""The numbered memory lines that the document tasks (summary, export, profile) show the model."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

MAX_LINES = 300
MAX_CHARS = 40_000


class MemoryLine(BaseModel):
    text: str
    created_at: datetime | None = None
    scope: str = ""  # e.g. "user=alice agent=bot"


def render(lines: list[MemoryLine]) -> str:
    """Numbered memory lines, newest last, cut to the prompt budget (the newest are kept)."""
    out: list[str] = []
    size = 0
    for i, line in reversed(list(enumerate(lines[-MAX_LINES:], 1))):
        when = f"{line.created_at:%Y-%m-%d} " if line.created_at else ""
        scope = f"({line.scope}) " if line.scope else ""
        text = f"[{i}] {when}{scope}{line.text}"
        size += len(text) + 1
        if size > MAX_CHARS:
            break
        out.append(text)
    return "\n".join(reversed(out)) or "(no memories)"
