"""Graph memory values shared by the services, the Postgres store and the Neo4j mirror."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memserver.domain.scope import Scope


def name_key(name: str) -> str:
    """What two names are compared on: case-folded, accents and punctuation removed, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain.casefold()).split())


@dataclass(frozen=True)
class KnownNode:
    """An existing node of the scope, as resolution sees it."""

    id: int
    name: str
    type: str
    aliases: tuple[str, ...]
    vector: Any  # unit vector or None


@dataclass(frozen=True)
class Resolution:
    """Where a name goes: an existing node (`node_id`, maybe learning the name as an alias) or a new node."""

    name: str
    type: str
    node_id: int | None  # None: a new node (named `canonical`)
    canonical: str  # the node's name (new node: this name; existing: the node's)
    alias: bool  # the name is a new alias of the existing node


@dataclass(frozen=True)
class RelationDraft:
    """A relation to write: names as the model wrote them (resolved to nodes by the store), its valid time,
    the memory it came from and the existing relations it ends."""

    scope: Scope
    source: str
    source_type: str
    relationship: str
    target: str
    target_type: str
    valid_at: datetime | None
    invalid_at: datetime | None
    memory_id: uuid.UUID | None
    fact: str | None = None
    replaces: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class Triple:
    source: str
    source_type: str
    relationship: str
    target: str
    target_type: str

    def as_mem0(self) -> dict[str, Any]:
        """The Mem0 v2 search/get_all relation shape (without score)."""
        return {
            "source": self.source,
            "source_type": self.source_type,
            "relationship": self.relationship,
            "target": self.target,
            "target_type": self.target_type,
        }


@dataclass
class GraphChanges:
    """What one add did to the graph: relations added, relations retired (contradicted), ids for the mirror."""

    added: list[Triple] = field(default_factory=list)
    retired: list[Triple] = field(default_factory=list)
    relation_ids: list[uuid.UUID] = field(default_factory=list)

    def as_v11(self) -> dict[str, Any]:
        """`relations` of a v1 add with output_format v1.1, in the shape Mem0's graph clients read
        (`added_entities` / `deleted_entities`: one inner list per change)."""
        return {
            "added_entities": [[_short(t)] for t in self.added],
            "deleted_entities": [[_short(t)] for t in self.retired],
        }

    def summary(self) -> dict[str, Any]:
        return {"relations_added": len(self.added), "relations_retired": len(self.retired)}


def _short(t: Triple) -> dict[str, str]:
    return {"source": t.source, "relationship": t.relationship, "target": t.target}


@dataclass(frozen=True)
class RelationRecord:
    """A stored relation with both time axes (valid: when it held; recorded: when memserver knew it)."""

    id: uuid.UUID
    triple: Triple
    fact: str | None
    memory_id: uuid.UUID | None
    event_id: uuid.UUID | None
    valid_at: datetime | None
    invalid_at: datetime | None
    created_at: datetime
    expired_at: datetime | None
    invalidated_by: uuid.UUID | None
    scope: Scope
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            **self.triple.as_mem0(),
            "fact": self.fact,
            "memory_id": str(self.memory_id) if self.memory_id else None,
            "event_id": str(self.event_id) if self.event_id else None,
            "valid_at": self.valid_at,
            "invalid_at": self.invalid_at,
            "created_at": self.created_at,
            "expired_at": self.expired_at,
            "invalidated_by": str(self.invalidated_by) if self.invalidated_by else None,
            **self.scope.as_dict(),
        }
