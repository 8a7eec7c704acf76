"""Rows -> the Mem0 wire format (contract §3). One superset shape serves every generation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memserver.domain.rows.entities import EntityCountRow
from memserver.domain.rows.events import EventRow
from memserver.domain.rows.memories import HistoryRow, MemoryRow

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def structured_attributes(ts: datetime | None) -> dict[str, Any] | None:
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
    }


def memory_out(row: MemoryRow, *, owner: str | None = None) -> dict[str, Any]:
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
        "structured_attributes": structured_attributes(row.created_at),
        "replaced_by": str(row.replaced_by) if row.replaced_by else None,
        "synthesized": False,
        "lifecycle_state": "active" if row.replaced_by is None else "superseded",
        "owner": owner,
        # memserver extension: which add (event) and which of its messages the memory came from
        "provenance": row.provenance,
    }


def search_hit_out(
    row: MemoryRow, score: float, breakdown: dict[str, float], *, owner: str | None = None
) -> dict[str, Any]:
    out = memory_out(row, owner=owner)
    out["score"] = round(score, 6)
    out["score_breakdown"] = {k: round(v, 6) for k, v in breakdown.items()}
    return out


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
    }


def entity_out(row: EntityCountRow, *, owner: str, organization: str) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "type": row.type,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "owner": owner,
        "organization": organization,
        "metadata": row.metadata,
        "total_memories": int(row.total_memories),
    }


def event_out(row: EventRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "event_type": row.event_type,
        "status": row.status,
        "payload": row.payload,
        "metadata": row.metadata,
        "results": row.results or [],
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "latency": row.latency_ms,
        # an add with enable_graph wrote its relations with its memories: same status (metadata.graph)
        "graph_status": row.status if isinstance(row.metadata, dict) and "graph" in row.metadata else None,
    }
