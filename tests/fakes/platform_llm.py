"""A scripted LLM for the platform's documents (summaries, exports, profiles), for `FakeOpenAI.chat_script`.

It reads memserver's prompts (pipeline/prompts/{summary,export,profile}.py): the task from the system
message's "TASK: <name>." and the numbered memory lines. Every answer is derived from those lines, so a test
can tell which memories reached the LLM:
* summary -> {"summary": "Summary: <memory texts joined by ' | '>"}
* export  -> {"data": {...}}: each required/listed property of the schema filled from the memories
  (strings: the first memory, arrays: every memory, integers: the count, booleans: true). When the export
  instructions contain "BROKEN-ONCE", the first answer leaves out the required properties (a repair test).
* profile -> {"data": {...}} the same way, plus a property the schema does not name ("not_in_schema"); arrays
  of objects hold one object per memory. When the profile instructions contain "UNREADABLE", no JSON at all.
* dream   -> one pattern per recurring thread (tests/fakes/dream_llm.py `threads`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes import dream_llm

_LINE = re.compile(r"^\[\d+\] (?:\d{4}-\d\d-\d\d )?(?:\([^)]*\) )?(.*)$")
_broken_once: set[str] = set()


def memory_texts(prompt: str) -> list[str]:
    part = prompt.split("Memories", 1)[1] if "Memories" in prompt else ""
    return [m.group(1) for line in part.splitlines() if (m := _LINE.match(line))]


def _fill(schema: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "array":
            items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
            out[name] = [_fill(items, [t]) for t in texts] if items.get("type") == "object" else list(texts)
        elif kind == "integer" or kind == "number":
            out[name] = len(texts)
        elif kind == "boolean":
            out[name] = True
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = texts[0] if texts else ""
    return out


def platform_script(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    system = str(messages[0].get("content", "")) if messages else ""
    users = [m for m in messages if m.get("role") == "user"]
    user = str(users[0].get("content", "")) if users else ""  # a repair round adds its request after it
    texts = memory_texts(user)
    if system.startswith("TASK: dream"):
        return dream_llm.threads(body)
    if system.startswith("TASK: summary"):
        return json.dumps({"summary": "Summary: " + " | ".join(texts)})
    schema = json.loads(user.split("JSON schema:\n", 1)[1].split("\n", 1)[0]) if "JSON schema:\n" in user else {}
    data = _fill(schema, texts)
    if system.startswith("TASK: export") and "BROKEN-ONCE" in user and user not in _broken_once:
        _broken_once.add(user)
        return json.dumps({"data": {}})
    if system.startswith("TASK: profile"):
        if "UNREADABLE" in user:  # custom instructions asking for a failure: never a usable reply
            return "I would rather not."
        data["not_in_schema"] = "dropped"
    return json.dumps({"data": data})
