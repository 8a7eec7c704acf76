"""Health: readiness (database and embedder usable) and the numbers /metrics reports at scrape time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from memserver import metrics
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.job_sweep import SweepRepository

CHECK_TIMEOUT_S = 5.0
EMBEDDER_CHECK_EVERY_S = 10.0  # a success is trusted this long: readiness probes do not each run the model


@dataclass
class ReadinessState:
    embedder_ok_at: float = field(default=-1e9)


async def readiness(db: Database, providers: Providers, state: ReadinessState) -> dict[str, str]:
    """{"database": "ok" | "error: ...", "embedder": "ok" | "error: ..."}."""
    out: dict[str, str] = {}
    try:
        await asyncio.wait_for(db.ping(), CHECK_TIMEOUT_S)
        out["database"] = "ok"
    except Exception as exc:  # report, don't raise: the probe exists to say what is broken
        out["database"] = f"error: {type(exc).__name__}"
    if time.monotonic() - state.embedder_ok_at < EMBEDDER_CHECK_EVERY_S:
        out["embedder"] = "ok"
    else:
        try:
            # a new text per check window, so an embedding cache cannot answer for a broken model
            probe = f"memserver readiness probe {int(time.time() // EMBEDDER_CHECK_EVERY_S)}"
            await asyncio.wait_for(providers.embedder.embed([probe]), CHECK_TIMEOUT_S)
            state.embedder_ok_at = time.monotonic()
            out["embedder"] = "ok"
        except Exception as exc:
            out["embedder"] = f"error: {type(exc).__name__}"
    return out


async def refresh_metrics(db: Database) -> None:
    """Read the gauges that live outside this process's request path (job queue, pools)."""
    for pool, counts in db.pool_status().items():
        for state, value in counts.items():
            metrics.DB_POOL.labels(pool, state).set(value)
    try:
        async with db.connect() as conn:
            stats = await asyncio.wait_for(SweepRepository(conn).queue_stats(), CHECK_TIMEOUT_S)
    except Exception:
        return  # the scrape still answers; the job gauges keep their last values
    metrics.JOBS_PENDING.set(stats.pending)
    metrics.JOBS_RUNNING.set(stats.running)
    metrics.JOBS_OLDEST_PENDING_AGE.set(stats.oldest_pending_age_s)
