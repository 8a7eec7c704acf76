"""Documents written by the LLM from a set of memories: a summary, an export filled to a user's JSON
schema, a user profile. Prompts and reply models only; no I/O.

    lines = [MemoryLine(text=..., created_at=...), ...]
    gen = await llm.generate(summary_prompt(lines, scope), SummaryReply)
    model = schema_reply(schema)   # the reply is {"data": <an instance of schema>}, checked against it
    gen = await llm.generate(export_prompt(lines, schema, instructions), model, context={"schema": schema})
    gen = await llm.generate(profile_prompt(lines, schema, instructions, previous), model, context={"schema": schema})
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationInfo, model_validator

from memserver.domain.json_schema import problems
from memserver.pipeline.types import ChatMessage

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


class SummaryReply(BaseModel):
    summary: str = Field(description="A faithful summary of the memories, in prose.")


SUMMARY_SYSTEM = (
    "TASK: summary. You summarise what a memory store knows. Use only the numbered memories given; "
    "never invent facts. Group related facts, prefer recent memories when they conflict, and keep it concise. "
    'Answer with JSON: {"summary": "..."}.'
)


def summary_prompt(lines: list[MemoryLine], scope: str) -> list[ChatMessage]:
    return [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": f"Memories of {scope or 'the whole project'}:\n{render(lines)}"},
    ]


class SchemaReply(BaseModel):
    """{"data": <instance of the caller's schema>}; the schema comes in the validation context."""

    data: dict[str, Any]
    target_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @model_validator(mode="after")
    def _fits_schema(self, info: ValidationInfo) -> SchemaReply:
        schema = (info.context or {}).get("schema") or self.target_schema
        found = problems(self.data, schema, "$.data")
        if found:
            raise ValueError("the data does not match the schema: " + "; ".join(found))
        return self

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """What structured-output servers are asked for: the caller's schema under `data`."""
        return {
            "title": cls.__name__,
            "type": "object",
            "properties": {"data": cls.target_schema},
            "required": ["data"],
        }


def schema_reply(schema: dict[str, Any]) -> type[SchemaReply]:
    """A reply model asking for an instance of `schema`."""
    return type("SchemaReply", (SchemaReply,), {"target_schema": schema})


EXPORT_SYSTEM = (
    "TASK: export. Fill the JSON schema from the numbered memories. Use only what the memories state; leave "
    "out optional fields they do not support, and use empty values for required fields they do not support. "
    'Answer with JSON: {"data": <an object matching the schema>}.'
)

PROFILE_SYSTEM = (
    "TASK: profile. Write the profile of one user from the numbered memories, as an object matching the JSON "
    "schema (each property's description says what belongs there). Use only what the memories state; when "
    "memories conflict, the newer wins. Update the previous profile rather than starting over, and drop what "
    'the memories no longer support. Answer with JSON: {"data": <the profile>}.'
)


def export_prompt(lines: list[MemoryLine], schema: dict[str, Any], instructions: str | None) -> list[ChatMessage]:
    extra = f"\nExport instructions: {instructions}" if instructions else ""
    return [
        {"role": "system", "content": EXPORT_SYSTEM},
        {
            "role": "user",
            "content": f"JSON schema:\n{json.dumps(schema)}{extra}\n\nMemories:\n{render(lines)}",
        },
    ]


def profile_prompt(
    lines: list[MemoryLine],
    schema: dict[str, Any],
    instructions: str | None,
    previous: dict[str, Any] | None,
    entity: str,
) -> list[ChatMessage]:
    parts = [f"User: {entity}", f"JSON schema:\n{json.dumps(schema)}"]
    if instructions:
        parts.append(f"Instructions: {instructions}")
    if previous:
        parts.append(f"Previous profile:\n{json.dumps(previous)}")
    parts.append(f"Memories:\n{render(lines)}")
    return [{"role": "system", "content": PROFILE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
