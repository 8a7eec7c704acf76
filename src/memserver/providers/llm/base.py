"""The LLM port: structured generation validated by a pydantic reply model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

# {"role": "system"|"user"|"assistant", "content": str | list of OpenAI content parts}
ChatMessage = dict[str, Any]


@dataclass
class Usage:
    """What a generation cost: completion requests answered and the tokens they reported."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Prompt tokens the server served from its prefix cache (OpenAI, vLLM: usage.prompt_tokens_details;
    # llama.cpp: timings.cache_n); 0 when it reports none.
    cached_prompt_tokens: int = 0

    def add(self, other: Usage) -> Usage:
        """Accumulate another usage into this one (returns self)."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens
        return self

    def __iadd__(self, other: Usage) -> Usage:
        return self.add(other)


@dataclass
class Generation(Generic[T]):
    """A validated reply, the usage of every attempt it took (fallbacks, repairs and continuations included),
    and notes on what was changed or dropped to understand it (they end up on the event: `metadata.notes`)."""

    value: T
    usage: Usage
    notes: list[str] = field(default_factory=list)


class LLM(Protocol):
    """Chat model that answers with JSON matching a pydantic model."""

    name: str
    model: str
    vision: bool  # False: image parts are not sent (callers strip them; adapters strip them defensively)

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        response_model: type[T],
        *,
        context: dict[str, Any] | None = None,
        budget: int | None = None,
    ) -> Generation[T]:
        """Ask for a reply validated by `response_model` with `context` (item by item: an item invalid on its
        own is dropped with a note). `budget`: the completion tokens this reply should need (the adapter
        bounds it by its ceiling); None asks for the ceiling."""
        ...

    async def aclose(self) -> None: ...


def strip_images(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The messages with every non-text content part removed (for models without vision)."""
    out: list[ChatMessage] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            texts = [p for p in content if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")]
            # An image-only message keeps a (empty) string: servers refuse an empty list of parts.
            m = {**m, "content": texts or ""}
        out.append(m)
    return out
