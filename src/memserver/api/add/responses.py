"""What an add answers: its memory events, or its queued event (v1.0 bare array, v1.1 and v3 objects)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from memserver.api.graph.responses import GraphChanges
from memserver.api.kit.wire import EventOp, JobState, Out
from memserver.domain.changes import Outcome
from memserver.services.ingest import AddResult


class MemoryData(Out):
    memory: str


class MemoryEvent(Out):
    """A memory an add created or changed (v1.0 reads `data.memory`, v1.1 `memory`)."""

    id: str | None
    event: EventOp
    data: MemoryData
    previous_memory: str | None = Field(None, description="UPDATE only: the text before.")
    memory: str


class AddQueued(Out):
    """An add's event: PENDING until a worker has run it (SUCCEEDED at once for infer=false)."""

    message: str
    status: JobState
    event_id: str


class AddResponse(AddQueued):
    """v3 add: infer=false also lists the memory events (`results`)."""

    results: list[MemoryEvent] | None = Field(None, description="infer=false only.")


class AddResponseV11(Out):
    """v1 add with output_format=v1.1 (`relations`: the graph changes of a processed add with enable_graph)."""

    results: list[AddQueued | MemoryEvent]
    relations: GraphChanges | list[Any]


def event_item(o: Outcome) -> dict[str, Any]:
    """A memory event as the add responses list it (v1.0 `data.memory` and v1.1 `memory` at once)."""
    return {**o.as_event(), "memory": o.text}


def v3_response(result: AddResult, *, infer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"message": result.message, "status": result.status.value, "event_id": str(result.event_id)}
    if not infer:
        out["results"] = [event_item(o) for o in result.results]
    return out
