"""Asynchronous work: the `events` table is the source of truth, a JobQueue only carries ids.

An accepted async add is written as a PENDING event (committed) before it is queued, so a lost
queue message or a crashed worker never loses it: `recover()` re-queues what was left behind.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from sqlalchemy import text

from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.events import EventRepository
from memserver.types import Principal

log = logging.getLogger(__name__)

EXTRACTION_UNAVAILABLE = (
    "LLM extraction (infer=true) is not available in this version of memserver; nothing was extracted. "
    "The messages are kept in this event's payload. Send infer=false to store messages verbatim."
)
ACCEPTED = (
    "Accepted as an asynchronous event. Note: LLM extraction (infer=true) is not available in this version "
    "of memserver, so the event will end FAILED with that reason; send infer=false to store messages verbatim."
)


class JobQueue(Protocol):
    """Carries event ids to whoever runs them (in-process tasks, or Celery workers)."""

    def submit(self, event_id: uuid.UUID) -> None: ...


async def submit_add(db: Database, queue: JobQueue, principal: Principal, payload: dict[str, Any]) -> uuid.UUID:
    event_id = uuid.uuid4()
    async with db.connect() as conn:
        await EventRepository(conn).insert(principal.project_id, event_id, "ADD", "PENDING", payload=payload)
    queue.submit(event_id)  # after the commit: the worker must find the row
    return event_id


class ExtractionUnavailable(Exception):
    pass


async def _process(providers: Providers, event_type: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    if event_type == "ADD":
        raise ExtractionUnavailable(EXTRACTION_UNAVAILABLE)
    raise ValueError(f"unknown event type {event_type}")


async def run_event(db: Database, providers: Providers, event_id: uuid.UUID) -> str | None:
    """Claim and run one event; idempotent (a second delivery finds it no longer PENDING)."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE events SET status = 'RUNNING', attempts = attempts + 1, started_at = now(), "
                    "updated_at = now() WHERE id = :id AND status = 'PENDING' RETURNING event_type, payload"
                ),
                {"id": event_id},
            )
        ).first()
    if row is None:
        return None
    status, results, error = "SUCCEEDED", None, None
    try:
        results = await _process(providers, row.event_type, row.payload or {})
    except ExtractionUnavailable as exc:
        status, error = "FAILED", str(exc)
    except Exception as exc:  # recorded with its reason; never silently dropped
        log.exception("event %s failed", event_id)
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
    async with db.connect() as conn:
        await conn.execute(
            text(
                "UPDATE events SET status = :s, results = CAST(:r AS jsonb), error = :e, completed_at = now(), "
                "updated_at = now(), latency_ms = 1000 * extract(epoch FROM now() - created_at) WHERE id = :id"
            ),
            {"s": status, "r": _json(results or []), "e": error, "id": event_id},
        )
    return status


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


async def recover(db: Database, *, stale_after_s: float = 600) -> list[uuid.UUID]:
    """Events a dead process left behind: RUNNING past the lease goes back to PENDING; returns all PENDING."""
    async with db.connect() as conn:
        await conn.execute(
            text(
                "UPDATE events SET status = 'PENDING', updated_at = now() WHERE status = 'RUNNING' "
                "AND started_at < now() - make_interval(secs => :s)"
            ),
            {"s": stale_after_s},
        )
        rows = await conn.execute(
            text("SELECT id FROM events WHERE status = 'PENDING' ORDER BY created_at LIMIT 10000")
        )
        return [r.id for r in rows]
