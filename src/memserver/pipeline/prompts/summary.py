"""The summary of what a memory store knows (POST /v1/summary/).

gen = await llm.generate(summary.build(lines, scope), summary.Reply, budget=None)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from memserver.pipeline.prompts.memory_lines import MemoryLine, render
from memserver.pipeline.types import ChatMessage

SYSTEM = (
    "TASK: summary. You summarise what a memory store knows. Use only the numbered memories given; "
    "never invent facts. Group related facts, prefer recent memories when they conflict, and keep it concise. "
    'Answer with JSON: {"summary": "..."}.'
)


class Reply(BaseModel):
    summary: str = Field(description="A faithful summary of the memories, in prose.")


def build(lines: list[MemoryLine], scope: str) -> list[ChatMessage]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Memories of {scope or 'the whole project'}:\n{render(lines)}"},
    ]
