"""What runs each kind of job, and the job context both runners (in-process, Celery) build from settings."""

from __future__ import annotations

import uuid

from memserver.config import Settings
from memserver.domain.jobs import JobKind
from memserver.providers.registry import Providers
from memserver.services import documents, dream_run, graph, ingest, jobs, profiles, webhooks
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob


async def _add(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """An accepted add: infer=false payloads are stored verbatim, the rest go through extraction."""
    if job.payload.get("infer") is False:
        await ingest.run_verbatim_add_job(db, providers, job)
    else:
        await ingest.run_add_job(db, providers, job)


def handlers(settings: Settings) -> dict[JobKind, jobs.Handler]:
    return {
        JobKind.ADD: _add,
        JobKind.WEBHOOK: webhooks.delivery_handler(),
        JobKind.EXPORT: documents.run_export_job,
        JobKind.PROFILE: profiles.run_profile_job,
        JobKind.GRAPH_SYNC: graph.sync_job,
        JobKind.DREAM: dream_run.run_handler(settings.dream),
    }


def job_context(settings: Settings, db: Database, providers: Providers) -> jobs.JobContext:
    w, wh, dr = settings.worker, settings.webhooks, settings.dream
    return jobs.JobContext(
        db=db,
        providers=providers,
        handlers=handlers(settings),
        lease_s=w.lease_s,
        heartbeat_s=w.heartbeat_s,
        policy=jobs.RetryPolicy(w.max_attempts, w.retry_backoff_s, w.retry_backoff_max_s),
        policies={
            JobKind.WEBHOOK: jobs.RetryPolicy(wh.max_attempts, wh.retry_backoff_s, wh.retry_backoff_max_s),
            JobKind.DREAM: jobs.RetryPolicy(dr.max_attempts, dr.retry_backoff_s, 3600.0),
        },
    )


async def run_job(ctx: jobs.JobContext, job_id: uuid.UUID) -> jobs.RunOutcome:
    return await jobs.run(ctx, job_id)
