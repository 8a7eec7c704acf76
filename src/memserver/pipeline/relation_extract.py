"""Graph memory decisions (pure, no I/O): the names relations are keyed by, what the extraction prompt shows
of the graph (`GraphContext`), the relation reply model (`ExtractedRelation`), and entity resolution.

The relations come from the same LLM call as the facts (`pipeline.prompts.extract`, with the instructions of
`pipeline.prompts.graph`): with graph on, every fact may carry `relations`, each a typed edge between two named
entities with when it held and the refs of existing relations it ends (`replaces`). Nothing here decides that a
relation is contradicted by itself: the model names what a relation replaces, among the relations it was shown,
and a relation that can hold alongside others (likes pizza, likes sushi) replaces nothing. Ended relations are
retired, never deleted (see `storage.repositories.graph_writes`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from difflib import SequenceMatcher
from typing import Any
from uuid import UUID

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from memserver.domain.relations import KnownNode, Resolution, name_key

GENERIC_TYPE = "entity"
__all__ = ["ExtractedRelation", "KnownNode", "Resolution", "name_key"]
# Resolution thresholds (all-MiniLM-L6-v2 on short names): two spellings of one name ("Jon Smith" /
# "John Smith") are close in characters; a different name that means the same ("NYC" / "New York City")
# only in meaning, and then only very close; unrelated names of one kind ("Alice" / "Bob") sit far below.
SPELLING_RATIO = 0.85  # difflib ratio of the normalised names
SPELLING_MIN_COS = 0.5  # ... and not unrelated in meaning
MEANING_COS = 0.92  # same meaning without shared spelling
MAX_SHOWN_RELATIONS = 20


def relationship_key(value: str) -> str:
    """snake_case, lower case, letters/digits only: LIVES IN, lives-in and livesIn are one relationship."""
    value = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value.strip())
    return "_".join(re.sub(r"[^\w]+", " ", value.casefold()).split()) or "related_to"


def type_key(value: str | None) -> str:
    return relationship_key(value) if value and value.strip() else GENERIC_TYPE


class ShownRelation(BaseModel):
    """An existing, current relation shown to the model under a small ref."""

    model_config = ConfigDict(frozen=True)

    ref: int
    id: UUID
    source: str
    relationship: str
    target: str
    valid_at: datetime | None = None


class GraphContext(BaseModel):
    """What the extraction prompt shows for graph memory: who the speakers are, and the relations they may end."""

    model_config = ConfigDict(frozen=True)

    user_name: str | None = None
    agent_name: str | None = None
    relations: list[ShownRelation] = Field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# entity resolution
# ----------------------------------------------------------------------------------------------
def _compatible(a: str, b: str) -> bool:
    return a == b or GENERIC_TYPE in (a, b)


def resolve(names: list[tuple[str, str, Any]], known: list[KnownNode]) -> list[Resolution]:
    """Resolve each (name, type, unit vector) against the scope's nodes, and against the names before it.

    A name resolves to a node with the same normalised name or alias; else to the most similar node of a
    compatible type, when the names are two spellings of one (difflib ratio >= SPELLING_RATIO and cosine
    >= SPELLING_MIN_COS) or mean the same (cosine >= MEANING_COS). Otherwise it is a new node, which later
    names of the same batch may resolve to.
    """
    pool = list(known)
    out: list[Resolution] = []
    new_id = -1  # provisional ids for nodes created by this batch
    for name, ntype, vec in names:
        key = name_key(name)
        match = _exact(key, ntype, pool) or _similar(key, ntype, vec, pool)
        if match is not None:
            is_alias = key != name_key(match.name) and key not in {name_key(a) for a in match.aliases}
            out.append(Resolution(name, ntype, match.id, match.name, is_alias))
            if is_alias:
                pool = [replace_aliases(n, name) if n.id == match.id else n for n in pool]
            continue
        node = KnownNode(new_id, name, ntype, (), vec)
        pool.append(node)
        out.append(Resolution(name, ntype, new_id, name, False))
        new_id -= 1
    return out


def replace_aliases(node: KnownNode, alias: str) -> KnownNode:
    return KnownNode(node.id, node.name, node.type, (*node.aliases, alias), node.vector)


def _exact(key: str, ntype: str, pool: list[KnownNode]) -> KnownNode | None:
    for n in pool:
        if _compatible(ntype, n.type) and (key == name_key(n.name) or key in {name_key(a) for a in n.aliases}):
            return n
    return None


def _similar(key: str, ntype: str, vec: Any, pool: list[KnownNode]) -> KnownNode | None:
    best: tuple[float, KnownNode] | None = None
    for n in pool:
        if not _compatible(ntype, n.type):
            continue
        cos = float(np.dot(vec, n.vector)) if vec is not None and n.vector is not None else 0.0
        ratio = max(SequenceMatcher(None, key, name_key(s)).ratio() for s in (n.name, *n.aliases))
        if (ratio >= SPELLING_RATIO and cos >= SPELLING_MIN_COS) or cos >= MEANING_COS:
            score = ratio + cos
            if best is None or score > best[0]:
                best = (score, n)
    return best[1] if best else None


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
