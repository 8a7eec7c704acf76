"""What runs each kind of job: the one table both job runners (in-process, Celery) use."""

from __future__ import annotations

import uuid

from memserver.domain.jobs import JobKind, JobStatus
from memserver.providers.registry import Providers
from memserver.services import graph, ingest, jobs
from memserver.storage.db import Database

HANDLERS: dict[JobKind, jobs.Handler] = {JobKind.ADD: ingest.run_add_job, JobKind.GRAPH_SYNC: graph.sync_job}


async def run_job(db: Database, providers: Providers, job_id: uuid.UUID) -> JobStatus | None:
    return await jobs.run(db, providers, job_id, HANDLERS)
