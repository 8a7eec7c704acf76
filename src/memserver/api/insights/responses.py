"""Feedback, project stats and the values memories can be filtered by."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from memserver.api.kit.wire import Out
from memserver.domain.rows.feedback import FeedbackRow


class Feedback(Out):
    id: str | None
    memory_id: str
    feedback: Literal["POSITIVE", "NEGATIVE", "VERY_NEGATIVE"] | None
    feedback_reason: str | None
    user_email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FeedbackGiven(Feedback):
    message: str


class FeedbackList(Out):
    count: int
    results: list[Feedback]


class Stats(Out):
    total_memories: int
    total_retrieval_events: int
    total_add_events: int
    total_api_retrieval_events: int
    total_retrieval_events_limit: int
    total_users_with_memories: int
    total_agents_with_memories: int
    total_runs_with_memories: int
    memories_per_user: int
    memories_per_agent: int
    memories_per_run: int


class FilterOption(Out):
    value: str
    label: str


class FilterParameter(Out):
    name: str
    label: str
    type: str
    placeholder: str
    options: list[FilterOption]


class EntityFilters(Out):
    event_type: list[str]
    categories: list[str]
    users: list[str]
    parameters: list[FilterParameter]


def feedback_out(row: FeedbackRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "memory_id": str(row.memory_id),
        "feedback": row.feedback,
        "feedback_reason": row.feedback_reason,
        "user_email": row.member_email,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
