"""What runs each kind of job, and the job context both runners (in-process, Celery) build from settings."""

from __future__ import annotations

from dataclasses import replace

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
    w, wh = settings.worker, settings.webhooks
    lanes = jobs.default_lanes()
    lanes[jobs.JOBS] = replace(lanes[jobs.JOBS], cap=w.max_running_per_project)
    # A delivery waits on a receiver someone else runs: one project's share of the delivery slots is capped
    # even when nobody else waits, so a project whose receivers never answer cannot hold them all.
    lanes[jobs.WEBHOOKS] = replace(lanes[jobs.WEBHOOKS], cap=wh.max_running_per_project, hard=True)
    return jobs.JobContext(
        db=db,
        providers=providers,
        handlers=handlers(settings),
        lease_s=w.lease_s,
        heartbeat_s=w.heartbeat_s,
        policy=_policy(settings),
        policies=_policies(settings),
        lanes=lanes,
        # Queued adds of one scope share one extraction call (1: each add alone).
        batching={JobKind.ADD: ingest.add_batching(w.coalesce_max_adds, w.coalesce_max_chars)}
        if w.coalesce_max_adds > 1
        else {},
    )


def _policy(settings: Settings) -> jobs.RetryPolicy:
    w = settings.worker
    return jobs.RetryPolicy(w.max_attempts, w.retry_backoff_s, w.retry_backoff_max_s)


def _policies(settings: Settings) -> dict[JobKind, jobs.RetryPolicy]:
    wh, dr = settings.webhooks, settings.dream
    return {
        JobKind.WEBHOOK: jobs.RetryPolicy(wh.max_attempts, wh.retry_backoff_s, wh.retry_backoff_max_s),
        JobKind.DREAM: jobs.RetryPolicy(dr.max_attempts, dr.retry_backoff_s, 3600.0),
    }


def max_attempts(settings: Settings) -> dict[str, int]:
    """Attempts allowed per job kind (the recovery sweep fails a job whose runners died on its last one)."""
    policy, policies = _policy(settings), _policies(settings)
    return {k.value: policies.get(k, policy).max_attempts for k in JobKind}
