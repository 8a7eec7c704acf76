"""Creating an entity (user, agent, app, run)."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from memserver.api.kit.schema import Schema, check_metadata
from memserver.domain import limits


class EntityCreate(Schema):
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("user_id", "agent_id", "app_id", "run_id", "name", mode="after")
    @classmethod
    def _bounded_id(cls, v: str | None) -> str | None:
        if v is not None:
            limits.check_entity_id("entity id", v)
        return v

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)
