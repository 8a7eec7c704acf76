"""Feedback on memories, project stats and `/v1/entities/filters/`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape
from memserver.api.insights.requests import FeedbackBody
from memserver.api.insights.responses import EntityFilters, FeedbackGiven, FeedbackList, Stats, feedback_out
from memserver.api.kit.values import memory_uuid
from memserver.api.kit.wire import wire
from memserver.errors import BadRequest
from memserver.services import insights

router = APIRouter(tags=["feedback and stats"])


@router.post(
    "/v1/feedback", summary="Give feedback on a memory (null feedback removes yours)", response_model=FeedbackGiven
)
@error_shape("error")
async def give_feedback(body: FeedbackBody, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    if not body.memory_id:
        raise BadRequest("memory_id is required")
    mid = memory_uuid(body.memory_id)
    row = await insights.give_feedback(runtime.db, principal, mid, body.feedback, body.feedback_reason)
    if row is None:
        removed = {
            "message": "Feedback removed",
            "id": None,
            "memory_id": str(mid),
            "feedback": None,
            "feedback_reason": None,
        }
        return wire(removed)
    return wire({"message": "Feedback recorded", **feedback_out(row)})


@router.get(
    "/v1/feedback",
    summary="Feedback of the project, or of one memory (memserver extension)",
    response_model=FeedbackList,
)
@error_shape("error")
async def list_feedback(runtime: RuntimeDep, principal: ReaderDep, memory_id: str | None = None) -> Response:
    rows = await insights.list_feedback(runtime.db, principal, memory_uuid(memory_id) if memory_id else None)
    return wire({"count": len(rows), "results": [feedback_out(r) for r in rows]})


@router.get("/v1/stats", summary="Counts of memories, events and entities of the project", response_model=Stats)
@error_shape("error")
async def stats(runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return wire(await insights.stats(runtime.db, principal))


@router.get(
    "/v1/entities/filters", summary="Values the project's memories can be filtered by", response_model=EntityFilters
)
@error_shape("error")
async def entity_filters(runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return wire(await insights.filter_values(runtime.db, principal))
