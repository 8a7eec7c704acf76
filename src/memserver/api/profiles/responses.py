"""Profile settings, profile jobs and an entity's profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memserver.api.kit.wire import Out


class EntityProfileSettings(Out):
    schema_: dict[str, Any] | None = Field(alias="schema", description="The schema that applies.")
    custom_instructions: str | None
    schema_source: str | None = Field(
        description="custom (the project's), default (memserver's user schema, used until one is set) or null."
    )


class ProfileSettings(Out):
    enabled: bool
    entities: dict[str, EntityProfileSettings] = Field(description="Per entity type: user, agent, app, run.")
    capabilities: dict[str, bool]


class ProfileJobAccepted(Out):
    message: str
    job_id: str
    status: str
    status_url: str
    operation: str | None
    entity_type: str | None
    entity_count_reserved: int
    event_id: str
    replayed: bool
    usage_units: int


class ProfileJobStatus(Out):
    id: str
    operation: str | None
    entity_type: str | None
    status: str
    total: int
    enumeration_complete: bool
    completed: int
    succeeded: int
    failed: int
    skipped: int
    results: list[dict[str, Any]]
    error: str | None


class ProfileJob(Out):
    job: ProfileJobStatus


class EntityProfile(Out):
    profile: dict[str, Any]
    status: str
    entity_type: str
    entity_id: str
    updated_at: datetime | None
    generation_count: int
    error: str | None = Field(description="Why the last generation failed, when status is failed.")
