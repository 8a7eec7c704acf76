"""A user profile written from the user's memories, to the project's profile schema (/v2/profiles/)."""

from __future__ import annotations

import json
from typing import Any

from memserver.pipeline.prompts.memory_lines import MemoryLine, render
from memserver.pipeline.prompts.schema_reply import context, schema_reply
from memserver.pipeline.types import ChatMessage

__all__ = ["SYSTEM", "build", "context", "schema_reply"]

SYSTEM = (
    "TASK: profile. Write the profile of one user from the numbered memories, as an object matching the JSON "
    "schema (each property's description says what belongs there). Use only what the memories state; when "
    "memories conflict, the newer wins. Update the previous profile rather than starting over, and drop what "
    'the memories no longer support. Answer with JSON: {"data": <the profile>}.'
)


def build(
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
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
