"""Reading memserver's Dream synthesis prompt (pipeline/prompts/dream.py) as the scripted model sees it, for
`FakeOpenAI.chat_script`: the memories it was shown (ref -> text) and the existing patterns (P-number -> text
and evidence refs). `threads` is a ready-made model: one pattern per recurring thread of words."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_MEMORY = re.compile(r"^(\d+)\. (?:\[\d{4}-\d\d-\d\d\] )?(.*)$")
_PATTERN = re.compile(r"^P(\d+): (.*) \(evidence: (.*)\)$")


@dataclass
class DreamPrompt:
    system: str
    memories: dict[int, str] = field(default_factory=dict)  # ref -> text
    patterns: dict[int, tuple[str, list[int]]] = field(default_factory=dict)  # P-number -> (text, evidence refs)

    def refs(self, word: str) -> list[int]:
        """The refs of the memories that mention `word` (case-insensitive)."""
        return [r for r, t in self.memories.items() if word.lower() in t.lower()]


def is_dream(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and str(messages[0].get("content", "")).startswith("TASK: dream")


def parse(body: dict[str, Any]) -> DreamPrompt:
    messages = body.get("messages") or []
    system = str(messages[0].get("content", ""))
    user = str(next(m.get("content", "") for m in messages if m.get("role") == "user"))
    head, _, shown = user.partition("Memories, oldest first:\n")
    out = DreamPrompt(system=system)
    for line in shown.splitlines():
        if m := _MEMORY.match(line):
            out.memories[int(m.group(1))] = m.group(2)
    for line in head.splitlines():
        if m := _PATTERN.match(line):
            refs = [int(x) for x in re.findall(r"\b(\d+)\b(?! older)", m.group(3))]
            out.patterns[int(m.group(1))] = (m.group(2), refs)
    return out


def reply(*patterns: dict[str, Any]) -> str:
    return json.dumps({"patterns": list(patterns)})


def threads(body: dict[str, Any], words: tuple[str, ...] = ("coffee", "run", "garden", "tea")) -> str:
    """One pattern per word mentioned by at least two memories ("User keeps coming back to <word> (N
    memories)."), updating the existing pattern of that word when there is one."""
    p = parse(body)
    out = []
    for word in words:
        refs = p.refs(word)
        if len(refs) < 2:
            continue
        item: dict[str, Any] = {"text": f"User keeps coming back to {word} ({len(refs)} memories).", "evidence": refs}
        for number, (text, _) in p.patterns.items():
            if f" to {word} (" in text:
                item["updates"] = number
        out.append(item)
    return reply(*out)
