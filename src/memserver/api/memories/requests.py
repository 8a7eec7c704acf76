"""Updates of one memory and batches of them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic.config import JsonDict

from memserver.api.kit.schema import Schema, check_metadata, check_text_length
from memserver.api.kit.values import memory_uuid
from memserver.domain.changes import UNSET, Unset
from memserver.domain.dates import Period, parse_period
from memserver.errors import BadRequest
from memserver.services import memories

_EVENT_PERIOD = (
    'memserver extension: the period the memory is about, {"start": ..., "end": ...} (end exclusive), or null for '
    "none. Absent: kept, unless new text names a time (then read from it)."
)
_PERIOD_SCHEMA: JsonDict = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
            "required": ["start", "end"],
        },
        {"type": "null"},
    ]
}


def event_period(body: UpdateRequest | BatchItem) -> Period | Unset | None:
    """The update's event period: UNSET when not sent (kept, or read from new text), None to clear it."""
    if "event_period" not in body.model_fields_set:
        return UNSET
    try:
        return parse_period(body.event_period)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


class UpdateRequest(Schema):
    """PUT /v1/memories/{memory_id}/. `expiration_date: null` clears the expiry."""

    text: str | None = None
    data: str | None = Field(None, description="Legacy alias of text.")
    message: str | None = Field(None, description="Legacy alias of text.")
    metadata: dict[str, Any] | None = None
    expiration_date: date | datetime | None = None
    timestamp: int | float | str | None = None
    event_period: Any = Field(None, description=_EVENT_PERIOD, json_schema_extra=_PERIOD_SCHEMA)

    @field_validator("text", "data", "message", mode="after")
    @classmethod
    def _bounded_text(cls, v: str | None) -> str | None:
        return check_text_length(v)

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


class BatchItem(Schema):
    memory_id: Any
    text: str | None = None
    metadata: dict[str, Any] | None = None
    event_period: Any = Field(None, description=_EVENT_PERIOD, json_schema_extra=_PERIOD_SCHEMA)

    @field_validator("text", mode="after")
    @classmethod
    def _bounded_text(cls, v: str | None) -> str | None:
        return check_text_length(v)

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


class BatchRequest(Schema):
    memories: list[Any] | None = None
    memory_ids: list[Any] | None = Field(None, description="Legacy form of batch delete.")


def batch_ids(body: BatchRequest) -> list[uuid.UUID]:
    raw: list[Any] = list(body.memories or []) + list(body.memory_ids or [])
    ids = []
    for item in raw:
        value = item
        while isinstance(value, dict):  # {"memory_id": id}, and the docs' doubly wrapped form
            value = value.get("memory_id", value.get("id"))
        if value is None:
            raise BadRequest("every item needs a memory_id")
        ids.append(memory_uuid(str(value)))
    return ids


def batch_changes(body: BatchRequest) -> list[tuple[uuid.UUID, memories.UpdateInput]]:
    changes = []
    for item in body.memories or []:
        if not isinstance(item, dict):
            raise BadRequest("every item must be an object with memory_id and text and/or metadata")
        try:
            parsed = BatchItem.model_validate(item)
        except ValidationError as exc:  # raised here, not by FastAPI: render it as the 400 it is
            loc = ".".join(str(x) for x in exc.errors()[0]["loc"])
            raise BadRequest(f"invalid batch item {item!r}: {loc}: {exc.errors()[0]['msg']}") from None
        if parsed.text is not None and not parsed.text.strip():
            raise BadRequest(f"memory {parsed.memory_id}: text must not be empty")
        if parsed.text is None and not {"metadata", "event_period"} & parsed.model_fields_set:
            raise BadRequest(f"memory {parsed.memory_id}: nothing to update (send text and/or metadata)")
        change = memories.UpdateInput(text=parsed.text, event_period=event_period(parsed))
        if "metadata" in parsed.model_fields_set:
            change.metadata = parsed.metadata
        changes.append((memory_uuid(str(parsed.memory_id)), change))
    return changes
