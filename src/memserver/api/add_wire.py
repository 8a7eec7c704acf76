"""The add request of every client generation -> `AddInput`, and its outcome -> the Mem0 response shapes."""

from __future__ import annotations

from typing import Any

from memserver.api.params import as_date, as_timestamp, flat_entity_ids
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
from memserver.errors import BadRequest
from memserver.services.ingest import AddResult


def add_input(body: AddRequest) -> AddInput:
    """Validate and normalise an add; every problem is a 400 in the add shape (the route declares it)."""
    try:
        ids = flat_entity_ids(body.filters) if body.filters else {}
    except BadRequest as exc:
        raise BadRequest(f"filters: {exc.message}") from None
    ids.update(body.ids())  # top-level ids win over ids inside filters
    if not ids:
        raise BadRequest("at least one of user_id, agent_id, app_id, run_id is required")
    if "*" in ids.values():
        raise BadRequest("'*' is a filter wildcard, not an entity id")
    try:
        messages = normalize_messages(body.messages)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if not messages:
        raise BadRequest("messages must not be empty")
    if any(not isinstance(m.get("content"), (str, list, dict)) for m in messages):
        raise BadRequest("every message needs a content")
    if all(isinstance(m["content"], str) and not m["content"].strip() for m in messages):
        raise BadRequest("messages have no content to store")
    bounds = limits.current()
    max_chars = bounds.max_text_chars
    if any(len(content_text(m["content"]) or "") > max_chars for m in messages):
        raise BadRequest(f"a message is longer than {max_chars} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)")
    try:  # documents and images: refused here, before anything is fetched, parsed or queued
        check_media(
            [m["content"] for m in messages],
            max_documents=bounds.max_document_parts,
            max_document_bytes=bounds.max_document_bytes,
            max_images=bounds.max_images,
            max_image_bytes=bounds.max_image_bytes,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    expiration_date, timestamp = as_date(body.expiration_date), as_timestamp(body.timestamp)
    try:
        custom_categories = parse_custom_categories(body.custom_categories)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return AddInput(
        messages=[
            AddMessage(role=str(m.get("role") or "user"), content=m["content"], name=_name(m.get("name")))
            for m in messages
        ],
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
