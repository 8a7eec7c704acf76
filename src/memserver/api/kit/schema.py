"""The base of every request model: unknown fields ignored, values Postgres can store, bounded sizes."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memserver.domain import limits


def reject_nul(value: Any) -> None:
    """ValueError when a string anywhere in the value holds a NUL character."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL characters are not allowed")
    elif isinstance(value, dict):
        for k, v in value.items():
            reject_nul(k)
            reject_nul(v)
    elif isinstance(value, list):
        for v in value:
            reject_nul(v)


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A metadata object within MEMSERVER_LIMITS__MAX_METADATA_BYTES (as JSON)."""
    if value is not None:
        limits.check_json(value)
        n = limits.current().max_metadata_bytes
        if len(orjson.dumps(value)) > n:
            raise ValueError(f"metadata is larger than {n} bytes as JSON (MEMSERVER_LIMITS__MAX_METADATA_BYTES)")
    return value


def check_text_length(value: str | None, what: str = "text") -> str | None:
    if value is not None:
        n = limits.current().max_text_chars
        if len(value) > n:
            raise ValueError(f"{what} is longer than {n} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)")
    return value


class Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Postgres text and jsonb cannot store NUL or lone surrogates; deep nesting is bounded
        # (MEMSERVER_LIMITS__MAX_JSON_DEPTH). Stored values (metadata) are checked further.
        limits.check_json(data, stored=False)
        return data


EntityId = str | int | None


class EntityIds(Schema):
    user_id: EntityId = None
    agent_id: EntityId = None
    app_id: EntityId = None
    run_id: EntityId = None
    session_id: EntityId = Field(None, description="Deprecated alias of run_id (Python 0.1.x).")

    @field_validator("user_id", "agent_id", "app_id", "run_id", "session_id", mode="after")
    @classmethod
    def _as_str(cls, v: EntityId) -> str | None:
        if v is None:
            return None
        s = str(v)
        limits.check_entity_id("entity id", s)
        return s if s.strip() else None

    def ids(self) -> dict[str, str]:
        out = {k: getattr(self, k) for k in ("user_id", "agent_id", "app_id", "run_id") if getattr(self, k)}
        if "run_id" not in out and self.session_id:
            out["run_id"] = str(self.session_id)
        return out
