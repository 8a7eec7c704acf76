"""The graph mirror port: an external graph database that holds a copy of the graph Postgres records.

Postgres is the graph store of record (`storage.repositories.graph_writes`, written in the memories' own
transaction). A mirror cannot join that transaction, so it is fed by GRAPH_SYNC jobs that copy a scope's
relations, whole and idempotently: an outage delays the copy, never loses or half-applies it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from memserver.domain.relations import RelationRecord
from memserver.domain.scope import Scope


class GraphMirror(Protocol):
    name: str

    async def setup(self) -> None:
        """Create the constraints and indexes the mirror's queries use (idempotent)."""
        ...

    async def replace_scope(self, project_id: uuid.UUID, scope: Scope, relations: Sequence[RelationRecord]) -> None:
        """Make the mirror's copy of this scope exactly these relations (and their entities)."""
        ...

    async def scope_relations(self, project_id: uuid.UUID, scope: Scope) -> list[dict[str, object]]:
        """The mirror's relations of a scope (what the integration test compares with Postgres)."""
        ...

    async def aclose(self) -> None: ...
