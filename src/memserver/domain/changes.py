"""Memory changes: what the single write path (`storage.repositories.memories.MemoryWriter`) applies.

A verbatim add is a list of `NewMemory`; an inferred add is a list of decisions of all four kinds
for one scope. Either is applied all or nothing, and every change writes its history row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, Final

from memserver.domain.dates import Period
from memserver.domain.scope import Scope


class Op(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NOOP = "NOOP"


class Unset(Enum):
    """Marks a field an update leaves as it is (distinct from None, which clears it).

    A one-member enum, so `x is not UNSET` narrows `T | Unset` to `T` for the type checker.
    """

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET

# `memories.source` of a Dream pattern memory: read back as `synthesized: true`, kept out of an add's
# reconciliation candidates and of Dream's own evidence.
SYNTHESIZED: Final = "synthesized"


@dataclass(frozen=True)
class NewMemory:
    """A memory to insert. An exact duplicate (same text hash in the same scope) becomes a NOOP."""

    text: str
    hash: str
    scope: Scope
    embedding: Any  # a unit vector (numpy float32 row); passed to the database untouched
    index: int = 0  # position in the request (message index, or fact index for inferred adds)
    role: str | None = None
    actor_id: str | None = None
    categories: list[str] | None = None
    provenance: dict[str, Any] | None = None
    source: str = "verbatim"  # verbatim | inferred | synthesized
    event_start: datetime | None = None  # the period the text is about, half-open; both or neither
    event_end: datetime | None = None


@dataclass(frozen=True)
class AddDefaults:
    """Fields an add request gives every memory it creates."""

    metadata: dict[str, Any] | None = None
    immutable: bool = False
    expiration_date: date | None = None
    created_at: datetime | None = None  # backdates created_at (the request's `timestamp`)


@dataclass(frozen=True)
class MemoryEdit:
    """A change to an existing memory; UNSET fields stay as they are."""

    memory_id: uuid.UUID
    text: str | None = None  # with hash and embedding
    hash: str | None = None
    embedding: Any = None
    metadata: dict[str, Any] | Unset | None = UNSET
    categories: list[str] | Unset | None = UNSET
    expiration_date: date | Unset | None = UNSET
    created_at: datetime | None = None
    provenance: dict[str, Any] | Unset | None = UNSET
    event_period: Period | Unset | None = UNSET  # None clears it


@dataclass(frozen=True)
class MemoryRemoval:
    """Delete a memory (its history stays), or retire it as superseded by another one.

    A retired memory stays readable (`replaced_by`, lifecycle "superseded"; `latest_only` hides it).
    `replaced_by_index` names the superseding memory among the same change set's adds (by index).
    """

    memory_id: uuid.UUID
    replaced_by: uuid.UUID | None = None
    replaced_by_index: int | None = None


@dataclass(frozen=True)
class Noop:
    memory_id: uuid.UUID | None
    text: str
    index: int = 0


@dataclass
class ChangeSet:
    """The decisions of one add for one project, applied in one transaction."""

    adds: list[NewMemory] = field(default_factory=list)
    edits: list[MemoryEdit] = field(default_factory=list)
    removals: list[MemoryRemoval] = field(default_factory=list)
    noops: list[Noop] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """One memory event of an add, as clients see it (ADD / UPDATE / DELETE / NOOP)."""

    index: int
    id: uuid.UUID | None
    text: str
    event: Op
    previous_text: str | None = None

    def as_event(self) -> dict[str, Any]:
        """The memory event as an add's event results list it (and v1.0 add responses)."""
        item: dict[str, Any] = {"id": str(self.id) if self.id else None, "event": self.event.value}
        item["data"] = {"memory": self.text}
        if self.previous_text is not None:
            item["previous_memory"] = self.previous_text
        return item
