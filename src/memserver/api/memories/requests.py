"""Updates of one memory and batches of them; what a delete-all deletes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic.config import JsonDict

from memserver.api.kit.filters import entity_node, filters_node, shortcut_nodes
from memserver.api.kit.schema import Schema, check_metadata, check_text_length
from memserver.api.kit.values import decode_object_param, memory_uuid
from memserver.domain import limits
from memserver.domain.changes import UNSET, Unset
from memserver.domain.dates import Period, parse_period
from memserver.domain.filters import Bool, Cond, Node, and_all, field_name
from memserver.domain.scope import ENTITY_FIELDS
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


# -- delete-all ----------------------------------------------------------------------------------
NO_FILTER = "At least one filter is required: user_id, agent_id, app_id, run_id (use '*' for all) or metadata"


def delete_all_filters(query_value: str | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """The `filters` of a delete-all: the query value (JSON or the Python clients' `str(dict)`), or, for curl, a
    JSON body's `filters`; not both."""
    given = decode_object_param(query_value, "filters")
    if "filters" not in body:
        return given
    if given is not None:
        raise BadRequest("filters is given in both the query and the body; send it once")
    if not isinstance(body["filters"], dict):
        raise BadRequest("filters must be a JSON object")
    return dict(body["filters"])


def delete_all_node(ids: dict[str, str], metadata: dict[str, Any] | None, filters: dict[str, Any] | None) -> Node:
    """What `DELETE /v1/memories/` deletes: the query's entity ids and `metadata`, and a `filters` object (the
    Python clients' `delete_all(filters=...)`).

    A flat `filters` (entity ids, camelCase too, and `metadata`) is merged into the query's ids and read as
    they are: concrete ids are ANDed, several '*' are a union (all four '*' wipe the project, as documented).
    The same key given both ways with different values is refused, not ANDed to nothing. Any other filter
    (AND/OR/NOT, operators, dates, categories) is ANDed with them. Either way the result must be scoped to an
    entity or require a metadata value, as a delete-all always was."""
    if filters:
        flat = _flat(filters)
        if flat is not None:
            ids = _merged("", ids, flat[0])
            metadata = _merged("metadata.", metadata or {}, flat[1]) or None
            filters = None
    for key, value in ids.items():
        try:
            limits.check_entity_id(key, value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    wild = [Cond(k, "any", None) for k, v in ids.items() if v == "*"]
    any_of = wild[0] if len(wild) == 1 else (Bool("OR", tuple(wild)) if wild else None)
    concrete = entity_node({k: v for k, v in ids.items() if v != "*"})
    node = and_all(concrete, any_of, shortcut_nodes(metadata=metadata), filters_node(filters))
    if node is None or not _narrowed(node):
        raise BadRequest(NO_FILTER)
    return node


def _flat(filters: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]] | None:
    """(entity ids, metadata) of a filter made only of entity ids and a `metadata` object; None otherwise."""
    ids: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    for raw_key, value in filters.items():
        key = field_name(raw_key)
        if key in ENTITY_FIELDS and isinstance(value, str | int) and not isinstance(value, bool):
            if str(value):  # empty counts as absent, as in the query
                ids = _merged("", ids, {key: str(value)})
        elif key == "metadata" and isinstance(value, dict):
            metadata = _merged("metadata.", metadata, value)
        else:
            return None
    return ids, metadata


def _merged(prefix: str, given: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    out = dict(given)
    for key, value in more.items():
        if key in out and out[key] != value:
            raise BadRequest(f"{prefix}{key} is given twice with different values")
        out[key] = value
    return out


def _narrowed(node: Node) -> bool:
    """True when every match is scoped to an entity id (eq, in, '*') or must carry a metadata value (eq,
    contains): what a delete-all needs, so no filter deletes across the project by date or category alone."""
    if isinstance(node, Cond):
        if node.field == "metadata":
            return node.op in ("eq", "contains", "icontains")
        return node.field in ENTITY_FIELDS and node.op in ("eq", "in", "any")
    if node.op == "AND":
        return any(_narrowed(c) for c in node.children)
    if node.op == "OR":
        return bool(node.children) and all(_narrowed(c) for c in node.children)
    return False
