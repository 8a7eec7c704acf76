"""Adding memories: v3 (`/v3/memories/add/`) and v1 (`POST /v1/memories/`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from memserver.api.deps import PrincipalDep, StateDep, error_shape
from memserver.api.params import as_date, as_timestamp, flat_entity_ids
from memserver.api.schemas import AddRequest
from memserver.errors import BadRequest, invalid_add
from memserver.pipeline.messages import normalize_messages
from memserver.services import jobs, memories
from memserver.storage.repositories.memories import Scope

router = APIRouter(tags=["add"])


def _add_input(body: AddRequest) -> memories.AddInput:
    try:
        ids = flat_entity_ids(body.filters) if body.filters else {}
    except BadRequest as exc:
        raise invalid_add(f"filters: {exc.message}") from None
    ids.update(body.ids())  # top-level ids win over ids inside filters
    if not ids:
        raise invalid_add("at least one of user_id, agent_id, app_id, run_id is required")
    if "*" in ids.values():
        raise invalid_add("'*' is a filter wildcard, not an entity id")
    try:
        messages = normalize_messages(body.messages)
    except ValueError as exc:
        raise invalid_add(str(exc)) from None
    if not messages:
        raise invalid_add("messages must not be empty")
    if any(not isinstance(m.get("content"), (str, list, dict)) for m in messages):
        raise invalid_add("every message needs a content")
    if all(isinstance(m["content"], str) and not m["content"].strip() for m in messages):
        raise invalid_add("messages have no content to store")
    try:
        created_at = as_timestamp(body.timestamp)
    except Exception as exc:
        raise invalid_add(str(exc)) from None
    payload = body.model_dump(mode="json", exclude_none=True, exclude={"async_mode"})
    return memories.AddInput(
        messages=messages,
        scope=Scope(**ids),
        metadata=body.metadata,
        categories=body.categories,
        immutable=body.immutable,
        expiration_date=as_date(body.expiration_date),
        created_at=created_at,
        payload=payload,
    )


def _event_item(o: memories.AddOutcome) -> dict[str, Any]:
    return {"id": str(o.id) if o.id else None, "event": o.event, "memory": o.text, "data": {"memory": o.text}}


async def run_add(state: StateDep, principal: PrincipalDep, body: AddRequest) -> memories.AddResult:
    req = _add_input(body)
    if body.infer:
        # Accepted asynchronously: committed as a PENDING event, then queued (never dropped).
        event_id = await jobs.submit_add(state.db, state.queue, principal, req.payload)
        return memories.AddResult(event_id=event_id, status="PENDING", results=[], message=jobs.ACCEPTED)
    return await memories.add_verbatim(state.db, state.providers, principal, req)


@router.post("/v3/memories/add", summary="Add memories (v3)")
@error_shape("add")
async def add_v3(body: AddRequest, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """infer=false stores each message verbatim and answers SUCCEEDED with the memory events."""
    result = await run_add(state, principal, body)
    out: dict[str, Any] = {
        "message": result.message,
        "status": result.status,
        "event_id": str(result.event_id),
    }
    if not body.infer:
        out["results"] = [_event_item(o) for o in result.results]
    return out


@router.post("/v1/memories", summary="Add memories (v1, deprecated)")
@error_shape("add")
async def add_v1(body: AddRequest, state: StateDep, principal: PrincipalDep) -> Any:
    """v1.0 answers a bare array; output_format=v1.1 wraps it in {results, relations}."""
    result = await run_add(state, principal, body)
    items: list[dict[str, Any]]
    if body.async_mode or body.infer:
        items = [{"message": result.message, "status": result.status, "event_id": str(result.event_id)}]
    else:
        items = [_event_item(o) for o in result.results]
    if body.output_format == "v1.1":
        return {"results": items, "relations": []}
    return items
