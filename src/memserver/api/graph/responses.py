"""Graph memory's shapes: v1/v2 `relations`, the graph changes of an add, an entity's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memserver.api.kit.wire import Out


class Relation(Out):
    """A relation as v2 search and get_all list them (`score` on search only)."""

    source: str
    source_type: str | None = None
    relationship: str
    target: str
    target_type: str | None = None
    score: float | None = Field(None, description="Search only.")


class GraphChanges(Out):
    """`relations` of a processed v1 add with output_format=v1.1: one inner list per change."""

    added_entities: list[list[dict[str, str]]]
    deleted_entities: list[list[dict[str, str]]]


class GraphEntity(Out):
    id: int
    name: str
    type: str | None
    aliases: list[str]
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    created_at: datetime


class TimelineRelation(Out):
    """A relation with both time axes: when it held (valid/invalid) and when memserver knew it (created/expired)."""

    id: str
    source: str
    source_type: str | None = None
    relationship: str
    target: str
    target_type: str | None = None
    fact: str | None = None
    memory_id: str | None
    event_id: str | None
    valid_at: datetime | None
    invalid_at: datetime | None
    created_at: datetime
    expired_at: datetime | None
    invalidated_by: str | None
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None


class ScopeEntity(Out):
    """A graph entity of the scope and how many relations it is in."""

    id: int
    name: str
    type: str | None
    aliases: list[str]
    relations: int = Field(description="Relations it is in, current and retired.")
    current: int = Field(description="Of those, the ones that hold now.")


class GraphEntities(Out):
    results: list[ScopeEntity]


class GraphTimeline(Out):
    """An entity's nodes in the scope and every relation of them, current and retired (memserver extension)."""

    name: str
    entities: list[GraphEntity]
    at: datetime | None
    relations: list[TimelineRelation]


def relations_out(records: list[Any], *, scored: bool = False) -> list[dict[str, Any]]:
    """Relations as v2 search/get_all list them: source, source_type, relationship, target, target_type
    (and `score` on search)."""
    out = []
    for r in records:
        item = r.triple.as_mem0()
        if scored:
            item["score"] = r.score
        out.append(item)
    return out
