"""Feedback on memories, project stats and the values filters can take (`/v1/entities/filters/`)."""

from __future__ import annotations

import uuid
from typing import Any

from memserver.domain.principal import Principal
from memserver.domain.rows.feedback import FeedbackRow
from memserver.errors import BadRequest, NotFound
from memserver.services import permissions
from memserver.storage.db import Database
from memserver.storage.repositories.insights import FeedbackRepository, StatsRepository
from memserver.storage.repositories.memories import MemoryRepository

FEEDBACK_VALUES = ("POSITIVE", "NEGATIVE", "VERY_NEGATIVE")
EVENT_TYPES = ["ADD", "UPDATE", "DELETE", "SEARCH", "GET_ALL", "GET", "DELETE_ALL", "DELETE_USER"]


async def give_feedback(
    db: Database, principal: Principal, memory_id: uuid.UUID, feedback: str | None, reason: str | None
) -> FeedbackRow | None:
    """One feedback per memory and member (upserted); feedback None removes it. Returns the stored row."""
    permissions.require_role(principal)
    value = None if feedback is None else str(feedback).strip().upper()
    if value is not None and value not in FEEDBACK_VALUES:
        raise BadRequest(f"feedback must be one of {', '.join(FEEDBACK_VALUES)} or null")
    async with db.transaction() as conn:
        if await MemoryRepository(conn).get(principal.project_id, memory_id) is None:
            raise NotFound("Memory not found!")
        repo = FeedbackRepository(conn)
        if value is None:
            await repo.remove(principal.project_id, memory_id, principal.user_email)
            return None
        return await repo.upsert(principal.project_id, memory_id, principal.user_email, value, reason)


async def list_feedback(db: Database, principal: Principal, memory_id: uuid.UUID | None) -> list[FeedbackRow]:
    async with db.connect() as conn:
        return await FeedbackRepository(conn).list(principal.project_id, memory_id)


async def stats(db: Database, principal: Principal) -> dict[str, int]:
    async with db.connect() as conn:
        repo = StatsRepository(conn)
        m = await repo.memory_counts(principal.project_id)
        events = await repo.event_counts(principal.project_id)
        reads = await repo.reads(principal.project_id)
    return {
        "total_memories": int(m.memories),
        # searches are not logged; what is counted is how often search returned a memory (decay on)
        "total_retrieval_events": reads,
        "total_add_events": events.get("ADD", 0),
        "total_api_retrieval_events": reads,
        "total_retrieval_events_limit": 0,  # self-hosted: no limit
        "total_users_with_memories": int(m.users),
        "total_agents_with_memories": int(m.agents),
        "total_runs_with_memories": int(m.runs),
        "memories_per_user": int(m.with_user) // max(1, int(m.users)),
        "memories_per_agent": int(m.with_agent) // max(1, int(m.agents)),
        "memories_per_run": int(m.with_run) // max(1, int(m.runs)),
    }


def _options(values: list[str]) -> list[dict[str, str]]:
    return [{"value": v, "label": v} for v in values]


async def filter_values(db: Database, principal: Principal) -> dict[str, Any]:
    """What a dashboard offers to filter by: event types, categories, users, and one parameter per field."""
    async with db.connect() as conn:
        repo = StatsRepository(conn)
        categories = await repo.categories(principal.project_id)
        names = await repo.entity_names(principal.project_id)
    parameters = [
        {
            "name": f"{t}_id",
            "label": t.capitalize(),
            "type": "select",
            "placeholder": f"Select a {t}",
            "options": _options(names.get(t, [])),
        }
        for t in ("user", "agent", "app", "run")
    ]
    parameters += [
        {
            "name": "categories",
            "label": "Categories",
            "type": "multiselect",
            "placeholder": "Select categories",
            "options": _options(categories),
        },
        {
            "name": "event_type",
            "label": "Event type",
            "type": "select",
            "placeholder": "Select an event type",
            "options": _options(EVENT_TYPES),
        },
    ]
    return {"event_type": EVENT_TYPES, "categories": categories, "users": names["user"], "parameters": parameters}
