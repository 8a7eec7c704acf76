"""The generic follow-up texts of the adapter (no task's wording: providers may not import the pipeline).

- `repair_prompt`: a reply with nothing usable is sent back once with what was wrong;
- `continuation_prompt`: a reply cut off by its token limit is continued once after its complete items;
- `with_schema`: in json_object or text mode, the reply's JSON schema goes into the system message.
"""

from __future__ import annotations

import json
from typing import Any

from memserver.providers.llm.base import ChatMessage

MAX_REPAIR_PROBLEMS = 10


def repair_prompt(problems: list[str]) -> str:
    """Ask for corrected JSON, listing what was wrong (without echoing the reply back)."""
    lines = [f"- {p}" for p in problems[:MAX_REPAIR_PROBLEMS]] or ["- the reply states nothing usable"]
    return (
        "Your reply was not valid:\n"
        + "\n".join(lines)
        + "\nReply again with the corrected JSON object only, no other text."
    )


def continuation_prompt(key: str, complete: int) -> str:
    """Ask for the rest of a cut-off list, in the same shape, without the items already given."""
    return (
        f'Your reply was cut off after {complete} {key}. Reply with {{"{key}": [...]}} holding only the {key} '
        f'not listed yet, or {{"{key}": []}}.'
    )


def continuation(messages: list[ChatMessage], key: str, complete: list[Any]) -> list[ChatMessage]:
    """The same prompt (so its prefix is served from the cache), the complete items as the model's turn, and
    the request for the rest."""
    shown = json.dumps({key: complete}, ensure_ascii=False)
    return [
        *messages,
        {"role": "assistant", "content": shown},
        {"role": "user", "content": continuation_prompt(key, len(complete))},
    ]


def repair(messages: list[ChatMessage], reply: str, problems: list[str]) -> list[ChatMessage]:
    bad = {"role": "assistant", "content": reply or "(empty reply)"}  # some servers refuse empty content
    return [*messages, bad, {"role": "user", "content": repair_prompt(problems)}]


def with_schema(messages: list[ChatMessage], schema: dict[str, Any]) -> list[ChatMessage]:
    """The messages with the reply's JSON schema described in the system message (json_object or text mode)."""
    note = f"Reply with one JSON object only, matching this JSON schema:\n{json.dumps(schema, separators=(',', ':'))}"
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def merge_system(messages: list[ChatMessage]) -> list[ChatMessage]:
    """For servers that refuse the system role: the system text opens the first user message (joined with a
    blank line, so the prompt's prefix stays byte-identical between calls)."""
    system = [m for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    if not system:
        return list(messages)
    text = "\n\n".join(str(m.get("content") or "") for m in system)
    for i, m in enumerate(rest):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                merged: Any = [{"type": "text", "text": text}, *content]
            else:
                merged = f"{text}\n\n{content or ''}"
            return [*rest[:i], {**m, "content": merged}, *rest[i + 1 :]]
    return [{"role": "user", "content": text}, *rest]
