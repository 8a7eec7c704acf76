"""Event use cases: read one, list a page."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memserver.domain import binding
from memserver.domain.jobs import JobKind
from memserver.domain.principal import Principal
from memserver.domain.rows.events import EventPageRow, EventRow
from memserver.errors import NotFound
from memserver.storage.db import Database
from memserver.storage.repositories.events import EventRepository
from memserver.storage.repositories.memories import MemoryRepository


async def get_event(db: Database, principal: Principal, event_id: uuid.UUID) -> EventRow:
    async with db.connect() as conn:
        row = await EventRepository(conn).get(principal.project_id, event_id)
        if row is None or (principal.binding and not _of_binding(principal, row)):
            raise NotFound("Event not found or you don't have permission to access it.")
        if principal.binding and (row.results or row.metadata):
            row = await _confined(MemoryRepository(conn), principal, row)
    return row


@dataclass
class _ConfinedEvent:
    """An event as a bound key sees it: its row with only the results the binding may see."""

    id: uuid.UUID
    event_type: str
    status: str
    payload: Any
    results: list[Any] | None
    error: str | None
    metadata: dict[str, Any] | None
    latency_ms: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


async def _confined(memories: MemoryRepository, principal: Principal, row: EventRow) -> EventRow:
    """The results whose memory carries the bound ids. An add by a user and an agent also changes the
    agent's memories (shared by all its users): their text, old and new, and their ids are not the bound
    key's to read, as `GET /v1/memories/{id}/` of one is a 404. A result without a memory id is dropped too;
    so is the LLM's decision (`metadata.decisions`) about a memory the key may not read, or about none."""
    metadata = row.metadata if isinstance(row.metadata, dict) else None
    decisions = metadata.get("decisions") if metadata is not None else None
    ids: dict[str, uuid.UUID] = {}
    for item in [*(row.results or []), *(decisions if isinstance(decisions, list) else [])]:
        key = "memory_id" if isinstance(item, dict) and "op" in item else "id"
        try:
            ids[str(item[key])] = uuid.UUID(str(item[key]))
        except (KeyError, TypeError, ValueError):
            continue
    scopes = await memories.scopes_of(principal.project_id, list(ids.values()))

    def visible(item: Any, key: str) -> bool:
        mid = ids.get(str(item.get(key))) if isinstance(item, dict) else None
        found = scopes.get(mid) if mid is not None else None
        return bool(found) and all(binding.allows_ids(principal.binding, scope) for scope in found or [])

    fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(_ConfinedEvent)}
    fields["results"] = [r for r in row.results or [] if visible(r, "id")]
    if metadata is not None and isinstance(decisions, list):
        fields["metadata"] = metadata | {"decisions": [d for d in decisions if visible(d, "memory_id")]}
    return _ConfinedEvent(**fields)


def _of_binding(principal: Principal, row: EventRow) -> bool:
    """A bound key reads the events of its entity's adds only (their payload names the ids it added under)."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    return row.event_type == JobKind.ADD.value and binding.allows_ids(principal.binding, payload)


async def list_events(
    db: Database, principal: Principal, *, page: int, page_size: int
) -> tuple[list[EventPageRow], int]:
    async with db.connect() as conn:
        return await EventRepository(conn).list(principal.project_id, limit=page_size, offset=(page - 1) * page_size)
