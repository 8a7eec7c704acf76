"""One LLM call that extracts facts from an add's messages and reconciles them with existing memories.

`build_prompt(req)` renders the request; the LLM answers an `ExtractionReply`, validated against the request
through `reply_context(req)` (so a hallucinated ref or source triggers the adapter's repair round);
`reconcile.decide(req, reply)` turns the reply into decisions. No I/O here.

How a service uses it:
    req = ExtractionRequest(messages=..., candidates=..., observed_at=..., speakers=speakers_for(...), ...)
    gen = await llm.generate(build_prompt(req), ExtractionReply, context=reply_context(req))
    decisions = reconcile.decide(req, gen.value)
    # optional second call, when the memories nearest to the new facts were not among the candidates:
    req2 = req.model_copy(update={"candidates": nearest_to(facts_without_ref(gen.value))})
    gen2 = await llm.generate(build_followup_prompt(req2, facts_without_ref(gen.value)), ExtractionReply,
                              context=reply_context(req2))
    decisions = reconcile.decide(req, gen.value, followup=(req2, gen2.value))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from memserver.pipeline.prompts import EXTRACT_SYSTEM, FOLLOWUP_SYSTEM, GRAPH_SYSTEM
from memserver.pipeline.relation_extract import ExtractedRelation, render_context
from memserver.pipeline.types import Action, ChatMessage, ExtractionRequest, Speaker

_ACTION_ALIASES = {"NONE": "NOOP", "NO_OP": "NOOP", "CREATE": "ADD", "REMOVE": "DELETE"}


class ExtractedFact(BaseModel):
    text: str = Field(description="One self-contained statement.")
    speaker: Speaker = Field(description="Who stated the fact.")
    sources: list[int] = Field(default_factory=list, description="Numbers of the messages it comes from.")
    categories: list[str] = Field(default_factory=list, description="Names from the category list.")
    action: Action = Field("ADD", description="ADD, UPDATE, DELETE or NOOP.")
    ref: int | None = Field(None, description="The existing memory's ref; absent for ADD.")

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("text is empty")
        return v

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        # Small models write "add" or Mem0's "NONE"; accepting them costs nothing and saves a repair call.
        if isinstance(v, str):
            v = v.strip().upper()
            return _ACTION_ALIASES.get(v, v)
        return v

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str], info: ValidationInfo) -> list[str]:
        # Unknown categories are dropped, not an error: a wrong tag is not worth an LLM round trip.
        known = (info.context or {}).get("categories")
        names = [c.strip().lower() for c in v]
        return list(dict.fromkeys(c for c in names if c and (known is None or c in known)))

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> ExtractedFact:
        if self.action == "ADD" and self.ref is not None:
            raise ValueError("action ADD must not have a ref")
        if self.action != "ADD" and self.ref is None:
            raise ValueError(f"action {self.action} needs the ref of an existing memory")
        ctx = info.context or {}
        if "refs" in ctx and self.ref is not None and self.ref not in ctx["refs"]:
            raise ValueError(f"ref {self.ref} is not one of the existing memories shown")
        if "speakers" in ctx and self.speaker not in ctx["speakers"]:
            raise ValueError(f"facts stated by the {self.speaker} were not requested")
        if "sources" in ctx:
            _check_sources(self, ctx["sources"])
        return self


def _check_sources(fact: ExtractedFact, roles: dict[int, str]) -> None:
    """Sources must be non-system messages of the request, and one of them must be the speaker's."""
    unknown = [i for i in fact.sources if i not in roles]
    if unknown:
        raise ValueError(f"sources {unknown} are not user or assistant messages of the conversation")
    if not fact.sources and fact.action in ("ADD", "UPDATE"):
        raise ValueError("sources must list the messages the fact comes from")
    if fact.sources and all(roles[i] != fact.speaker for i in fact.sources):
        raise ValueError(f"speaker is {fact.speaker} but no source message is by the {fact.speaker}")


class ExtractionReply(BaseModel):
    facts: list[ExtractedFact] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        # json_object mode cannot force the wrapper object; a bare list of facts is unambiguous.
        return {"facts": data} if isinstance(data, list) else data


class GraphExtractedFact(ExtractedFact):
    """A fact with the relations it states (enable_graph)."""

    relations: list[ExtractedRelation] = Field(default_factory=list, description="Relations the fact states.")


class GraphExtractionReply(ExtractionReply):
    """The reply with enable_graph: a separate model, so the schema of every other add stays compact."""

    facts: list[GraphExtractedFact] = Field(default_factory=list)  # type: ignore[assignment]


def reply_model(req: ExtractionRequest) -> type[ExtractionReply]:
    """The reply model of a request: with relations when the request has graph memory on."""
    return GraphExtractionReply if req.graph is not None else ExtractionReply


def relations_of(fact: ExtractedFact) -> list[ExtractedRelation]:
    return list(getattr(fact, "relations", None) or [])


def reply_context(req: ExtractionRequest) -> dict[str, Any]:
    """The validation context that checks a reply against what this request showed the model."""
    return {
        "refs": frozenset(c.ref for c in req.candidates),
        "sources": req.source_roles(),
        "speakers": req.speakers,
        "categories": frozenset(req.categories),
        "relation_refs": frozenset(r.ref for r in req.graph.relations) if req.graph else frozenset(),
    }


def build_prompt(req: ExtractionRequest) -> list[ChatMessage]:
    """The system instructions and one user message with the request's context and conversation."""
    sections = [
        *_header(req),
        "Existing memories:\n" + _render_candidates(req),
        *([render_context(req.graph)] if req.graph is not None else []),
        "New messages:\n" + _render_messages(req),
    ]
    # The graph instructions are sent only with enable_graph: every other add keeps the compact prompt.
    system = EXTRACT_SYSTEM if req.graph is None else f"{EXTRACT_SYSTEM}\n\n{GRAPH_SYSTEM}"
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(sections)}]


def facts_without_ref(reply: ExtractionReply) -> list[ExtractedFact]:
    """The ADD facts: those that matched no memory shown (the nearest ones may not have been in the prompt)."""
    return [f for f in reply.facts if f.ref is None]


def build_followup_prompt(req: ExtractionRequest, facts: Sequence[ExtractedFact]) -> list[ChatMessage]:
    """Reconcile already-extracted facts with other candidates (`req.candidates`); same reply model and context."""
    lines = [json.dumps(f.model_dump(include={"text", "speaker", "sources", "categories"})) for f in facts]
    sections = [
        *_header(req),
        "Existing memories:\n" + _render_candidates(req),
        "Facts to reconcile:\n" + "\n".join(lines),
    ]
    return [{"role": "system", "content": FOLLOWUP_SYSTEM}, {"role": "user", "content": "\n\n".join(sections)}]


def _header(req: ExtractionRequest) -> list[str]:
    when = req.observed_at
    sections = [
        f"Observation date: {when:%Y-%m-%d %H:%M} {when.tzname() or 'UTC'} ({when:%A})",
        _speaker_line(req.speakers),
    ]
    instructions = _instructions(req)
    if instructions:
        sections.append("Extra instructions:\n" + "\n".join(instructions))
    sections.append("Categories:\n" + "\n".join(f"- {name}: {desc}" for name, desc in req.categories.items()))
    return sections


def _speaker_line(speakers: frozenset[Speaker]) -> str:
    if speakers == {"user"}:
        return "Extract facts stated by: user. Assistant messages are context only."
    if speakers == {"assistant"}:
        return (
            "Extract facts stated by: assistant (about itself, what it did, recommended or committed to). "
            "User messages are context only."
        )
    return "Extract facts stated by: user, assistant. Attribute each fact to whoever stated it."


def _instructions(req: ExtractionRequest) -> list[str]:
    """includes/excludes and custom instructions; agent_custom_instructions govern the assistant's facts."""
    out = []
    if req.includes:
        out.append(f"- Pay particular attention to: {_one_line(req.includes)}")
    if req.excludes:
        out.append(f"- Never extract: {_one_line(req.excludes)}")
    user_rules = req.custom_instructions if "user" in req.speakers else None
    agent_rules = (req.agent_custom_instructions or req.custom_instructions) if "assistant" in req.speakers else None
    if user_rules and agent_rules and user_rules == agent_rules:
        out.append(f"- {_one_line(user_rules)}")
    else:
        if user_rules:
            out.append(f"- For user facts: {_one_line(user_rules)}")
        if agent_rules:
            out.append(f"- For assistant facts: {_one_line(agent_rules)}")
    return out


def _render_candidates(req: ExtractionRequest) -> str:
    if not req.candidates:
        return "(none)"
    lines = []
    for c in req.candidates:
        when = f" (noted {c.created_at:%Y-%m-%d})" if c.created_at else ""
        # "ref N:" rather than "[N]" so memory refs cannot be mistaken for message numbers.
        lines.append(f"ref {c.ref}: {_one_line(c.text)}{when}")
    return "\n".join(lines)


def _render_messages(req: ExtractionRequest) -> str:
    """One numbered line per message with role and name; continuation lines indented, system marked as context."""
    lines = []
    for m in req.messages:
        who = f"{m.role} ({_one_line(m.name)})" if m.name else m.role
        if m.role not in ("user", "assistant"):
            who += " [context only]"
        body = "\n    ".join(line for line in m.text.strip().splitlines() if line.strip())
        lines.append(f"[{m.index}] {who}: {body}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())
