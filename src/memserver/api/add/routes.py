"""Adding memories: v3 (`/v3/memories/add/`) and v1 (`POST /v1/memories/`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from memserver.api.add.requests import AddRequest, add_input
from memserver.api.add.responses import AddQueued, AddResponse, AddResponseV11, MemoryEvent, event_item, v3_response
from memserver.api.deps import OwnerDep, RuntimeDep, confines_bound_keys, error_shape
from memserver.api.kit.wire import wire
from memserver.services import ingest

router = APIRouter(tags=["add"])


@router.post("/v3/memories/add", summary="Add memories (v3)", response_model=AddResponse)
@error_shape("add")
@confines_bound_keys  # ingest.add: the bound ids
async def add_v3(body: AddRequest, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    """infer=false stores each message verbatim and answers SUCCEEDED with the memory events."""
    inp = add_input(body)
    result = await ingest.add(runtime.db, runtime.providers, runtime.queue, principal, inp)
    return wire(v3_response(result, infer=body.infer))


@router.post(
    "/v1/memories",
    summary="Add memories (v1, deprecated)",
    response_model=list[AddQueued | MemoryEvent] | AddResponseV11,
)
@error_shape("add")
@confines_bound_keys  # ingest.add: the bound ids
async def add_v1(body: AddRequest, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    """v1.0 answers a bare array; output_format=v1.1 wraps it in {results, relations}."""
    inp = add_input(body)
    # v1 with async_mode=false processes the add in the request and lists its memory events.
    result = await ingest.add(runtime.db, runtime.providers, runtime.queue, principal, inp, wait=not body.async_mode)
    items: list[dict[str, Any]]
    if body.async_mode:  # the queued-event shape (SUCCEEDED at once for infer=false)
        items = [{"message": result.message, "status": result.status.value, "event_id": str(result.event_id)}]
    else:
        items = [event_item(o) for o in result.results]
    if body.output_format == "v1.1":
        # A processed add with enable_graph reports its graph changes in the shape Mem0's graph clients
        # read; a queued add has none yet (as on the Platform: read them with get_all).
        relations: Any = result.graph.as_v11() if result.graph is not None else []
        return wire({"results": items, "relations": relations})
    return wire(items)
