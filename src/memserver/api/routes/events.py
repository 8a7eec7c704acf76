"""Events: the outcome of adds (GET /v1/event/{id}/) and their list."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from memserver.api.deps import ReaderDep, StateDep, confines_bound_keys, error_shape, segment
from memserver.api.params import check_page, envelope
from memserver.api.responses import Event, EventPage, wire
from memserver.api.serialize import event_out
from memserver.errors import BadRequest
from memserver.services import events

router = APIRouter(tags=["events"])


@router.get("/v1/event/{event_id}", summary="Get an event (status, results, error)", response_model=Event)
@error_shape("error")
@confines_bound_keys  # events.get_event: only the events of the bound entity's adds
async def get_event(event_id: str, state: StateDep, principal: ReaderDep) -> Response:
    try:
        eid = uuid.UUID(segment(event_id))
    except ValueError:
        raise BadRequest("event_id should be a valid UUID") from None
    return wire(event_out(await events.get_event(state.db, principal, eid)))


@router.get("/v1/events", summary="List events", response_model=EventPage)
async def list_events(
    request: Request, state: StateDep, principal: ReaderDep, page: int = 1, page_size: int = 50
) -> Response:
    p, size = check_page(page, page_size, max_size=1000)
    rows, total = await events.list_events(state.db, principal, page=p, page_size=size)
    return wire(envelope(request, state.settings.public_url, [event_out(r) for r in rows], total, p, size))
