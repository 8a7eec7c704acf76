"""The add request of every client generation -> `AddInput`, and its outcome -> the Mem0 response shapes."""

from __future__ import annotations

from typing import Any

from memserver.api.schemas import AddRequest
from memserver.domain import limits
from memserver.domain.add import (
    AddInput,
    AddMessage,
    check_media,
    content_text,
    normalize_messages,
    parse_custom_categories,
)
from memserver.domain.changes import Outcome
from memserver.domain.dates import parse_timestamp, to_date
from memserver.domain.filters import FilterError, entity_equalities, parse_filters
from memserver.errors import BadRequest
from memserver.services.ingest import AddResult


def add_input(body: AddRequest) -> AddInput:
    """Validate and normalise an add; the first problem found is a 400 in the add shape (the route declares it).

    Each step calls down into `domain/` only; a ValueError carries the text the client sees."""
    try:
        ids = _entity_ids(body)
        messages = _messages(body.messages)
        expiration_date = to_date(body.expiration_date) if body.expiration_date is not None else None
        timestamp = parse_timestamp(body.timestamp) if body.timestamp is not None else None
        custom_categories = parse_custom_categories(body.custom_categories)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return AddInput(
        messages=messages,
        **ids,
        metadata=body.metadata,
        categories=body.categories,
        immutable=body.immutable,
        expiration_date=expiration_date,
        timestamp=timestamp,
        infer=body.infer,
        includes=body.includes,
        excludes=body.excludes,
        custom_instructions=body.custom_instructions,
        agent_custom_instructions=body.agent_custom_instructions,
        custom_categories=custom_categories,
        enable_graph=body.enable_graph,
    )


def _entity_ids(body: AddRequest) -> dict[str, str]:
    """The ids given flat inside `filters` (how the Python SDK sends them on add), then the top-level ones,
    which win."""
    try:
        ids = entity_equalities(parse_filters(body.filters)) if body.filters else {}
    except FilterError as exc:
        raise ValueError(f"filters: {exc}") from None
    ids.update(body.ids())
    if not ids:
        raise ValueError("at least one of user_id, agent_id, app_id, run_id is required")
    if "*" in ids.values():
        raise ValueError("'*' is a filter wildcard, not an entity id")
    return ids


def _messages(raw: Any) -> list[AddMessage]:
    """`messages` in any accepted shape, each with a content, within the text and media limits."""
    messages = normalize_messages(raw)
    if not messages:
        raise ValueError("messages must not be empty")
    if any(not isinstance(m.get("content"), (str, list, dict)) for m in messages):
        raise ValueError("every message needs a content")
    if all(isinstance(m["content"], str) and not m["content"].strip() for m in messages):
        raise ValueError("messages have no content to store")
    bounds = limits.current()
    max_chars = bounds.max_text_chars
    if any(len(content_text(m["content"]) or "") > max_chars for m in messages):
        raise ValueError(f"a message is longer than {max_chars} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)")
    check_media(  # documents and images: refused here, before anything is fetched, parsed or queued
        [m["content"] for m in messages],
        max_documents=bounds.max_document_parts,
        max_document_bytes=bounds.max_document_bytes,
        max_images=bounds.max_images,
        max_image_bytes=bounds.max_image_bytes,
    )
    return [
        AddMessage(role=str(m.get("role") or "user"), content=m["content"], name=_name(m.get("name"))) for m in messages
    ]


def _name(value: Any) -> str | None:
    return str(value) if value else None


def event_item(o: Outcome) -> dict[str, Any]:
    """A memory event as the add responses list it (v1.0 `data.memory` and v1.1 `memory` at once)."""
    return {**o.as_event(), "memory": o.text}


def v3_response(result: AddResult, *, infer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"message": result.message, "status": result.status.value, "event_id": str(result.event_id)}
    if not infer:
        out["results"] = [event_item(o) for o in result.results]
    return out
