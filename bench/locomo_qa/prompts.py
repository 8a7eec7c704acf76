"""The answer and judge prompts, and the project's custom instructions, of Mem0's published LoCoMo evaluation.

The texts in `mem0_eval/` are copied byte for byte (trailing spaces included) from mem0ai/mem0 at commit
b3ede5b7c0ac0e847b03786a603c107ac943b3ee, `evaluation/` (Apache License 2.0, Copyright Mem0 / Embedchain; the
directory was later moved out of that repository): `ANSWER_PROMPT` of `evaluation/prompts.py`,
`ACCURACY_PROMPT` of `evaluation/metrics/llm_judge.py` (the LLM-as-judge "J" of the Mem0 paper) and
`custom_instructions` of `evaluation/src/memzero/add.py`. `mem0_eval/README.md` lists their sha256.

`strict` is the J prompt with its two "be generous" sentences replaced: LoCoMo's judge accepts answers that only
touch the gold answer's topic (snap-research/LoCoMo#34), so a second, stricter label is reported beside J.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_DIR = Path(__file__).resolve().parent / "mem0_eval"
ANSWER_PROMPT = (_DIR / "answer_prompt.txt").read_text()
ACCURACY_PROMPT = (_DIR / "accuracy_prompt.txt").read_text()
CUSTOM_INSTRUCTIONS = (_DIR / "custom_instructions.txt").read_text()

_GENEROUS = (
    "The generated answer might be much longer, but you should be generous with your grading - as long as it "
    "touches on the same topic as the gold answer, it should be counted as CORRECT. ",
    'The generated answer might be much longer or use relative time references (like "last Tuesday" or "next '
    'month"), but you should be generous with your grading - as long as it refers to the same date or time period '
    "as the gold answer, it should be counted as CORRECT.",
)
_STRICT = (
    "The generated answer might be much longer. Label it CORRECT only if it states the gold fact and nothing that "
    "contradicts it; an answer that only touches on the same topic, or hedges between several answers, is WRONG. ",
    'The generated answer might be much longer or use relative time references (like "last Tuesday" or "next '
    'month"). Label it CORRECT only if it states the same date or time period as the gold answer and nothing that '
    "contradicts it.",
)


def _strict_prompt() -> str:
    text = ACCURACY_PROMPT
    for generous, strict in zip(_GENEROUS, _STRICT, strict=True):
        if generous not in text:
            raise RuntimeError("mem0_eval/accuracy_prompt.txt changed: the strict judge cannot be derived from it")
        text = text.replace(generous, strict)
    return text


JUDGE_PROMPTS = {"mem0": ACCURACY_PROMPT, "strict": _strict_prompt()}
JUDGES = tuple(JUDGE_PROMPTS)


def memory_line(hit: dict[str, object]) -> str:
    """A search hit as Mem0's evaluation lists it: "<metadata.timestamp>: <memory>" (created_at if the hit has no
    such metadata, e.g. a memory another client wrote)."""
    metadata = hit.get("metadata")
    when = metadata.get("timestamp") if isinstance(metadata, dict) else None
    return f"{when or hit.get('created_at')}: {hit.get('memory')}"


def answer_prompt(speaker_1: str, memories_1: list[str], speaker_2: str, memories_2: list[str], question: str) -> str:
    """ANSWER_PROMPT rendered as Mem0's jinja2 `Template.render` does for these plain values (the user ids are
    "<name>_<idx>"; the prompt shows the name)."""
    values = {
        "speaker_1_user_id": speaker_1.split("_")[0],
        "speaker_2_user_id": speaker_2.split("_")[0],
        "speaker_1_memories": json.dumps(memories_1, indent=4),
        "speaker_2_memories": json.dumps(memories_2, indent=4),
        "question": question,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], ANSWER_PROMPT)


def judge_prompt(variant: str, question: str, gold: str, answer: str) -> str:
    return JUDGE_PROMPTS[variant].format(question=question, gold_answer=gold, generated_answer=answer)
