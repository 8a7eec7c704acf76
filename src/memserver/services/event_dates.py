"""Event periods for memories stored before memserver read them: each text read against when it was recorded.

An operator's command (`memserver backfill-event-dates`), over every project: the texts do not change, so no
history row and no webhook is written. Days are UTC days (the add's time zone was not kept before either)."""

from __future__ import annotations

import uuid

from memserver.pipeline import time_expressions
from memserver.storage.db import Database
from memserver.storage.repositories.event_periods import EventPeriodRepository

BATCH = 1000


async def backfill(db: Database, *, batch: int = BATCH) -> tuple[int, int]:
    """Read every undated memory's text; returns (memories read, memories given a period). Run again, it reads
    the ones still undated (those naming no time) and changes nothing."""
    after, read, dated = uuid.UUID(int=0), 0, 0
    while True:
        async with db.connect() as conn:
            rows = await EventPeriodRepository(conn).undated(after, batch)
        if not rows:
            return read, dated
        found = [(u, p) for u in rows if (p := time_expressions.event_period(u.memory, u.created_at)) is not None]
        async with db.transaction() as conn:
            dated += await EventPeriodRepository(conn).set_periods(found)
        read, after = read + len(rows), rows[-1].id
