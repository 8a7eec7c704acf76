"""Inputs and outputs of memory extraction: what the LLM is shown and what the services layer applies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memserver.pipeline.categories import DEFAULT_CATEGORIES
from memserver.pipeline.relation_extract import ExtractedRelation, GraphContext

Speaker = Literal["user", "assistant"]
Action = Literal["ADD", "UPDATE", "DELETE", "NOOP"]
# Same shape as providers.llm.base.ChatMessage; restated because the layers contract keeps pipeline and
# providers independent of each other.
ChatMessage = dict[str, Any]


class InMessage(BaseModel):
    """One message of the add call, numbered by its position in the request."""

    model_config = ConfigDict(frozen=True)

    index: int
    role: str  # "user" | "assistant" | "system" (anything else is context, like system)
    name: str | None = None
    text: str


class Candidate(BaseModel):
    """An existing memory shown to the model under a small integer ref (never its UUID)."""

    model_config = ConfigDict(frozen=True)

    ref: int
    id: UUID
    text: str
    created_at: datetime | None = None
    immutable: bool = False
    # The speaker whose scope holds it (an add with user_id and agent_id shows the memories of both scopes);
    # only that speaker's facts may change it. None: the add has one scope, every candidate is in it.
    owner: Speaker | None = None

    def writable_by(self, speaker: Speaker) -> bool:
        return self.owner is None or self.owner == speaker


class AddGroup(BaseModel):
    """The messages of one add and when they were observed (the date relative dates in them resolve against)."""

    model_config = ConfigDict(frozen=True)

    observed_at: datetime
    messages: list[InMessage]


class ExtractionRequest(BaseModel):
    """Everything one extraction-and-reconciliation call needs: the messages of one add, or of several adds of
    one scope in acceptance order (one group each, messages numbered across all of them).

    `ExtractionRequest(messages=..., observed_at=...)` builds the request of one add."""

    groups: list[AddGroup]
    candidates: list[Candidate] = Field(default_factory=list)
    speakers: frozenset[Speaker] = frozenset({"user"})
    includes: str | None = None
    excludes: str | None = None
    custom_instructions: str | None = None
    agent_custom_instructions: str | None = None
    categories: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    graph: GraphContext | None = None  # enable_graph: facts also carry the relations they state
    in_english: bool = False  # the project set multilingual=false: memories are written in English

    @model_validator(mode="before")
    @classmethod
    def _one_add(cls, data: Any) -> Any:
        if isinstance(data, dict) and "groups" not in data and "messages" in data:
            data = dict(data)
            data["groups"] = [{"observed_at": data.pop("observed_at", None), "messages": data.pop("messages")}]
        return data

    @property
    def messages(self) -> list[InMessage]:
        """Every message of the request, in order."""
        return [m for g in self.groups for m in g.messages]

    @property
    def observed_at(self) -> datetime:
        """When the request's last add was observed."""
        return self.groups[-1].observed_at

    @model_validator(mode="after")
    def _consistent(self) -> ExtractionRequest:
        if not self.groups:
            raise ValueError("a request holds the messages of at least one add")
        if not self.speakers:
            raise ValueError("at least one speaker's facts must be requested")
        if len({c.ref for c in self.candidates}) != len(self.candidates):
            raise ValueError("candidate refs must be unique")
        if len({m.index for m in self.messages}) != len(self.messages):
            raise ValueError("message indices must be unique")
        return self

    def source_roles(self) -> dict[int, str]:
        """Index -> role of the messages a fact may come from (system messages are context only)."""
        return {m.index: m.role for m in self.messages if m.role in ("user", "assistant")}


def speakers_for(*, user_id: str | None, agent_id: str | None) -> frozenset[Speaker]:
    """Whose facts an add extracts: the user's with a user_id (or no id at all), the assistant's with an agent_id."""
    speakers: set[Speaker] = set()
    if user_id or not agent_id:
        speakers.add("user")
    if agent_id:
        speakers.add("assistant")
    return frozenset(speakers)


class Decision(BaseModel):
    """What to do with one fact: ADD a memory, UPDATE/DELETE the target, or NOOP (already known)."""

    model_config = ConfigDict(frozen=True)

    op: Action
    text: str  # ADD/UPDATE: the new memory text; DELETE/NOOP: the target's stored text
    target_id: UUID | None = None  # None only for ADD
    previous_text: str | None = None  # the target's stored text (never the model's version of it)
    speaker: Speaker
    categories: list[str] = Field(default_factory=list)
    sources: list[int] = Field(default_factory=list)
    relations: list[ExtractedRelation] = Field(default_factory=list)  # enable_graph only
    # the dates the fact is about, as the model gave them: YYYY, YYYY-MM or YYYY-MM-DD (end inclusive)
    event_start: str | None = None
    event_end: str | None = None
