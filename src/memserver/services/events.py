"""Event use cases: read one, list a page."""

from __future__ import annotations

import uuid

from memserver.domain import binding
from memserver.domain.jobs import JobKind
from memserver.domain.principal import Principal
from memserver.domain.rows.events import EventPageRow, EventRow
from memserver.errors import NotFound
from memserver.storage.db import Database
from memserver.storage.repositories.events import EventRepository


async def get_event(db: Database, principal: Principal, event_id: uuid.UUID) -> EventRow:
    async with db.connect() as conn:
        row = await EventRepository(conn).get(principal.project_id, event_id)
    if row is None or (principal.binding and not _of_binding(principal, row)):
        raise NotFound("Event not found or you don't have permission to access it.")
    return row


def _of_binding(principal: Principal, row: EventRow) -> bool:
    """A bound key reads the events of its entity's adds only (their payload names the ids it added under)."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    return row.event_type == JobKind.ADD.value and binding.allows_ids(principal.binding, payload)


async def list_events(
    db: Database, principal: Principal, *, page: int, page_size: int
) -> tuple[list[EventPageRow], int]:
    async with db.connect() as conn:
        return await EventRepository(conn).list(principal.project_id, limit=page_size, offset=(page - 1) * page_size)
