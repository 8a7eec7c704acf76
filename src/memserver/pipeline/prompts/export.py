"""A memory export: the caller's JSON schema filled from the matching memories (POST /v1/exports/).

gen = await llm.generate(export.build(lines, schema, instructions), export.schema_reply(schema),
                         context=export.context(schema))
"""

from __future__ import annotations

import json
from typing import Any

from memserver.pipeline.prompts.memory_lines import MemoryLine, render
from memserver.pipeline.prompts.schema_reply import context, schema_reply
from memserver.pipeline.types import ChatMessage

__all__ = ["SYSTEM", "build", "context", "schema_reply"]

SYSTEM = (
    "TASK: export. Fill the JSON schema from the numbered memories. Use only what the memories state; leave "
    "out optional fields they do not support, and use empty values for required fields they do not support. "
    'Answer with JSON: {"data": <an object matching the schema>}.'
)


def build(lines: list[MemoryLine], schema: dict[str, Any], instructions: str | None) -> list[ChatMessage]:
    extra = f"\nExport instructions: {instructions}" if instructions else ""
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": f"JSON schema:\n{json.dumps(schema)}{extra}\n\nMemories:\n{render(lines)}",
        },
    ]
