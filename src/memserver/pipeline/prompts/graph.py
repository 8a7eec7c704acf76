"""Graph memory in the extraction call (enable_graph): the instructions appended to the extraction system
text, the relation each fact may carry, and the prompt section listing the existing relations it may end.

The relations come from the same LLM call as the facts (`prompts.extract`). Entity resolution and the names
relations are keyed by are decisions of `pipeline.relation_extract`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from memserver.domain.relations import name_key
from memserver.pipeline.relation_extract import GENERIC_TYPE, GraphContext, relationship_key, type_key

# Appended to the extraction system text only when the add has enable_graph: the same call also returns
# the relations.
SYSTEM = """\
Graph memory is on: give each fact the relations it states between named entities, as "relations": \
[{"source", "source_type", "relationship", "target", "target_type", "valid_from", "valid_to", "replaces"}].
- source, target: entity names as written in the conversation; the speakers are the entities named under Graph.
- source_type, target_type: person, place, organization, object, event, concept or another short noun.
- relationship: short, timeless, snake_case (lives_in, works_at, sister_of, likes), from source to target.
- valid_from, valid_to: ISO dates when the relation started or ended, if the conversation says (absolute, \
computed from the observation date of the message's add); omit them otherwise.
- replaces: refs N of "rel N" existing relations that this relation ends (a new home ends lives_in the old \
one). Never for relations that can hold together (likes sushi does not end likes pizza). Omit when none.
A fact with no relation between named entities has "relations": [].
Example relation: {"source": "alice", "source_type": "person", "relationship": "lives_in", "target": "Lisbon", \
"target_type": "place", "valid_from": "2025-03-01", "replaces": [2]}"""


def _as_datetime(value: Any) -> datetime | None:
    """A date or datetime from the model ("2024", "2024-05", "2024-05-03", ISO datetimes); None if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    for fmt in ("%Y", "%Y-%m"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ExtractedRelation(BaseModel):
    """One typed edge a fact states: source -[relationship]-> target."""

    source: str = Field(description="Entity name as written.")
    source_type: str = Field(GENERIC_TYPE, description="person, place, organization, ...")
    relationship: str = Field(description="snake_case, timeless: lives_in, works_at, sister_of.")
    target: str
    target_type: str = GENERIC_TYPE
    valid_from: datetime | None = Field(None, description="When it started to hold, if said (ISO date).")
    valid_to: datetime | None = Field(None, description="When it stopped holding, if said (ISO date).")
    replaces: list[int] = Field(default_factory=list, description="Refs of existing relations it ends.")

    @field_validator("source", "target")
    @classmethod
    def _name(cls, v: str) -> str:
        v = " ".join(v.split())
        if not name_key(v):
            raise ValueError("an entity name is empty")
        return v

    @field_validator("relationship")
    @classmethod
    def _relationship(cls, v: str) -> str:
        return relationship_key(v)

    @field_validator("source_type", "target_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str:
        return type_key(v if isinstance(v, str) else None)

    @field_validator("valid_from", "valid_to", mode="before")
    @classmethod
    def _when(cls, v: Any) -> datetime | None:
        return _as_datetime(v)  # an unreadable date is dropped, not worth a repair round trip

    @field_validator("replaces", mode="before")
    @classmethod
    def _replaces(cls, v: Any, info: ValidationInfo) -> Any:
        # A ref that was not shown ends nothing: it is removed (noted), and the relation it came with stands.
        refs = [v] if isinstance(v, int) else list(v or [])
        shown = (info.context or {}).get("relation_refs")
        if shown is not None:
            unknown = [r for r in refs if r not in shown]
            if unknown:
                notes = (info.context or {}).get("notes")
                if isinstance(notes, list):
                    notes.append(
                        f"replaces {unknown}: not refs of the existing relations shown; removed from a relation"
                    )
                refs = [r for r in refs if r in shown]
        return refs


def render_context(ctx: GraphContext) -> str:
    """The user-message section listing the existing relations (`rel N: a -[r]-> b (since D)`)."""
    who = []
    if ctx.user_name:
        who.append(f'the user is the entity "{ctx.user_name}"')
    if ctx.agent_name:
        who.append(f'the assistant is the entity "{ctx.agent_name}"')
    lines = [f"Graph: {'; '.join(who)}." if who else "Graph:", "Existing relations:"]
    if not ctx.relations:
        lines.append("(none)")
    for r in ctx.relations:
        since = f" (since {r.valid_at:%Y-%m-%d})" if r.valid_at else ""
        lines.append(f"rel {r.ref}: {r.source} -[{r.relationship}]-> {r.target}{since}")
    return "\n".join(lines)
