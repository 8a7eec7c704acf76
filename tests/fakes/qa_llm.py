"""A scripted answer model and judge for `bench.locomo_qa` (`FakeOpenAI(qa_echo=True)`, `--qa-echo`).

It reads the prompts of Mem0's LoCoMo evaluation (bench/locomo_qa/mem0_eval/) and answers deterministically:
* the answer prompt ("You are an intelligent memory assistant ...", a lone system message): the first memory line
  ("<timestamp>: <memory>") listed for the first speaker that has one ("No memories." when none);
* the judge prompt ("Your task is to label an answer ..."): `{"label": "CORRECT"}` when the generated answer
  shares a content word with the gold answer, with the generous (J) prompt; with the strict prompt (no "be
  generous"), only when it contains every content word of the gold answer; `{"label": "WRONG"}` otherwise.
Anything else: None (the fake's other behaviours answer it).
"""

from __future__ import annotations

import json
import re
from typing import Any

ANSWER_MARK = "You are an intelligent memory assistant"
JUDGE_MARK = "Your task is to label an answer to a question"
# function words the judge ignores when it compares the gold and the generated answer
_STOP = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "is", "was", "are", "were", "did", "do", "does"}
    | {"for", "with", "by", "from", "it", "its"}
)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - _STOP


def first_memory(prompt: str) -> str:
    decoder = json.JSONDecoder()
    for part in prompt.split("Memories for user ")[1:]:
        start = part.find("[")
        if start < 0:
            continue
        memories, _ = decoder.raw_decode(part[start:])
        if memories:
            return str(memories[0])
    return "No memories."


def judge(prompt: str) -> str:
    def last(field: str) -> str:
        found = re.findall(rf"^{field}: (.*)$", prompt, re.M)
        return found[-1] if found else ""

    gold, generated = _words(last("Gold answer")), _words(last("Generated answer"))
    generous = "be generous" in prompt  # Mem0's J prompt; the strict one wants every gold word
    correct = bool(gold & generated) if generous else bool(gold) and gold <= generated
    return json.dumps({"label": "CORRECT" if correct else "WRONG"})


def qa_reply(body: dict[str, Any]) -> str | None:
    prompt = "\n".join(_text(m) for m in body.get("messages") or [])
    if ANSWER_MARK in prompt:
        return first_memory(prompt)
    if JUDGE_MARK in prompt:
        return judge(prompt)
    return None
