"""The memory object (contract §3) and its history: one superset shape serves every generation.

`fields=[...]` on list and search keeps only the named keys (and `id`) of each memory.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field

from memserver.api.kit.wire import EventOp, Message, Out, Page
from memserver.domain.changes import SYNTHESIZED
from memserver.domain.dates import granularity
from memserver.domain.rows.memories import HistoryRow, MemoryRow

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Granularity = Literal["day", "week", "month", "season", "year", "range"]


class EventAttributes(Out):
    """Calendar facts of the memory's event period, taken at its midpoint (UTC)."""

    year: int
    month: int
    day: int
    day_of_week: Weekday
    quarter: int
    week_of_year: int
    is_weekend: bool
    granularity: Granularity


class EventPeriod(Out):
    """The period a memory's content is about (memserver extension): `[start, end)`."""

    start: datetime
    end: datetime = Field(description="Exclusive.")
    granularity: Granularity = Field(description="From the period's length (a local day is 23 to 25 hours).")


class StructuredAttributes(Out):
    """Calendar facts of `created_at` (UTC); `event`: those of the event period, when the memory has one."""

    day: int
    hour: int
    year: int
    month: int
    minute: int
    quarter: int
    is_weekend: bool
    day_of_week: Weekday
    day_of_year: int
    week_of_year: int
    event: EventAttributes | None = None


class Memory(Out):
    """The memory object (contract §3): one superset shape for every client generation."""

    id: str = Field(description="UUID")
    memory: str
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    session_id: str | None = Field(description="The same value as run_id (the v3 name).")
    hash: str = Field(description="md5 of the text")
    metadata: dict[str, Any] | None
    categories: list[str]
    immutable: bool
    expiration_date: date | None
    created_at: datetime
    updated_at: datetime
    structured_attributes: StructuredAttributes | None
    replaced_by: str | None = Field(description="The id of the memory that superseded this one.")
    synthesized: bool = Field(description="A pattern memory written by Dream synthesis (its sources in provenance).")
    lifecycle_state: Literal["active", "superseded"]
    owner: str | None
    provenance: dict[str, Any] | None = Field(
        description="memserver extension: the add (event_id) and message indices the memory came from; for a "
        "pattern memory, `synthesis.sources`: the ids of the memories it was distilled from."
    )
    event_period: EventPeriod | None = Field(
        None, description="memserver extension: the period the memory is about (its event dates), if it names one."
    )


class MemoryPage(Page[Memory]):
    pass


class HistoryEntry(Out):
    id: str
    memory_id: str
    input: list[Any] = Field(description="The messages of the add that caused the change.")
    old_memory: str | None
    new_memory: str | None
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    session_id: str | None
    categories: list[str]
    event: EventOp
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    event_period: EventPeriod | None = Field(None, description="memserver extension: the period of the state written.")


class HistoryPage(Page[HistoryEntry]):
    pass


class EntityMemory(Out):
    """A memory as GET /v1/memories/{entity_type}/{entity_id}/ lists it."""

    id: str
    memory: str
    metadata: dict[str, Any] | None
    categories: list[str]
    created_at: datetime
    updated_at: datetime
    input: list[Any]
    is_updated: bool
    event_period: EventPeriod | None = Field(None, description="memserver extension, as on `Memory`.")


class EntityMemoryPage(Page[EntityMemory]):
    pass


class MemoryDeleted(Message):
    cascade_count: int | None = Field(None, description="delete_linked=true only: superseded memories deleted too.")


class MemoriesDeleted(Message):
    deleted_count: int


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def structured_attributes(ts: datetime | None, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The spec's ten calendar keys of `created_at`, plus `event` (memserver: those of the event period)."""
    if ts is None:
        return None
    iso = ts.isocalendar()
    return {
        "day": ts.day,
        "hour": ts.hour,
        "year": ts.year,
        "month": ts.month,
        "minute": ts.minute,
        "quarter": (ts.month - 1) // 3 + 1,
        "is_weekend": ts.weekday() >= 5,
        "day_of_week": _DAYS[ts.weekday()],
        "day_of_year": ts.timetuple().tm_yday,
        "week_of_year": iso[1],
        "event": event,
    }


def event_period_out(row: MemoryRow | HistoryRow) -> dict[str, Any] | None:
    if row.event_start is None or row.event_end is None:
        return None
    return {"start": row.event_start, "end": row.event_end, "granularity": granularity(row.event_start, row.event_end)}


def event_attributes(period: dict[str, Any] | None) -> dict[str, Any] | None:
    """At the period's midpoint in UTC: noon of a local day keeps its date for zones within 12 hours of UTC."""
    if period is None:
        return None
    mid = (period["start"] + (period["end"] - period["start"]) / 2).astimezone(UTC)
    return {
        "year": mid.year,
        "month": mid.month,
        "day": mid.day,
        "day_of_week": _DAYS[mid.weekday()],
        "quarter": (mid.month - 1) // 3 + 1,
        "week_of_year": mid.isocalendar()[1],
        "is_weekend": mid.weekday() >= 5,
        "granularity": period["granularity"],
    }


def memory_out(row: MemoryRow, *, owner: str | None = None) -> dict[str, Any]:
    period = event_period_out(row)
    return {
        "id": str(row.id),
        "memory": row.memory,
        "user_id": row.user_id,
        "agent_id": row.agent_id,
        "app_id": row.app_id,
        "run_id": row.run_id,
        "session_id": row.run_id,  # v3 list/get/update/history name; emitted with run_id everywhere
        "hash": row.hash,
        "metadata": row.metadata,
        "categories": list(row.categories) if row.categories is not None else [],
        "immutable": row.immutable,
        "expiration_date": row.expiration_date.isoformat() if row.expiration_date else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "structured_attributes": structured_attributes(row.created_at, event_attributes(period)),
        "replaced_by": str(row.replaced_by) if row.replaced_by else None,
        "synthesized": row.source == SYNTHESIZED,  # a Dream pattern memory
        "lifecycle_state": "active" if row.replaced_by is None else "superseded",
        "owner": owner,
        # memserver extension: which add (event) and which of its messages the memory came from
        "provenance": row.provenance,
        "event_period": period,  # memserver extension: the period the memory is about
    }


def project_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """`fields` projection: the requested keys (and always the id)."""
    if not fields:
        return item
    keep = {"id", *fields}
    return {k: v for k, v in item.items() if k in keep}


def history_out(row: HistoryRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "memory_id": str(row.memory_id),
        "input": row.input or [],
        "old_memory": row.old_memory,
        "new_memory": row.new_memory,
        "user_id": row.user_id,
        "agent_id": row.agent_id,
        "app_id": row.app_id,
        "run_id": row.run_id,
        "session_id": row.run_id,
        "categories": list(row.categories) if row.categories is not None else [],
        "event": row.event,
        "metadata": row.metadata,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "event_period": event_period_out(row),
    }
