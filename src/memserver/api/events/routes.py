"""Events: the outcome of adds (GET /v1/event/{id}/) and their list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response

from memserver.api.deps import ReaderDep, RuntimeDep, confines_bound_keys, error_shape, segment
from memserver.api.events.responses import Event, EventPage, event_out
from memserver.api.kit.pagination import Paging, page_query
from memserver.api.kit.wire import wire
from memserver.errors import BadRequest
from memserver.services import events

router = APIRouter(tags=["events"])


@router.get("/v1/event/{event_id}", summary="Get an event (status, results, error)", response_model=Event)
@error_shape("error")
@confines_bound_keys  # events.get_event: only the events of the bound entity's adds
async def get_event(event_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    try:
        eid = uuid.UUID(segment(event_id))
    except ValueError:
        raise BadRequest("event_id should be a valid UUID") from None
    return wire(event_out(await events.get_event(runtime.db, principal, eid)))


@router.get("/v1/events", summary="List events", response_model=EventPage)
async def list_events(
    request: Request,
    runtime: RuntimeDep,
    principal: ReaderDep,
    paging: Annotated[Paging, page_query(default_size=50, max_size=1000)],
) -> Response:
    rows, total = await events.list_events(runtime.db, principal, page=paging.page, page_size=paging.size)
    return wire(paging.envelope(request, [event_out(r) for r in rows], total))
