"""Adding memories: verbatim (infer=false) synchronously in one statement; inferred (infer=true) as a job.

Load -> think -> apply: nothing holds a database transaction open across an embedding or LLM call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain import binding
from memserver.domain.add import AddInput
from memserver.domain.changes import AddDefaults, NewMemory, Op, Outcome
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.principal import Principal
from memserver.domain.relations import GraphChanges
from memserver.pipeline import messages as msgs
from memserver.pipeline import time_expressions
from memserver.providers.registry import Providers
from memserver.services import inference, jobs, permissions
from memserver.storage.db import Connection, Database, retry_transient
from memserver.storage.repositories.events import EventRepository
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memory_writes import MemoryWriter

ACCEPTED = "Memory processing has been queued for background execution"
STORED = "Memories stored successfully"
PROCESSED = "Memories processed successfully"


@dataclass
class AddResult:
    event_id: uuid.UUID
    status: JobStatus
    message: str
    results: list[Outcome] = field(default_factory=list)
    graph: GraphChanges | None = None  # enable_graph on a processed add: relations added and retired


def payload(inp: AddInput) -> dict[str, Any]:
    """The add as its event stores it (once): the normalised request."""
    return inp.model_dump(mode="json", exclude_none=True)


async def add(
    db: Database,
    providers: Providers,
    queue: jobs.JobQueue,
    principal: Principal,
    inp: AddInput,
    *,
    wait: bool = False,
) -> AddResult:
    """infer=false stores the messages now; infer=true is a job: queued (PENDING), or run now with `wait`.

    Without an LLM an infer=true add is refused at once: nothing is accepted that can only fail later.
    """
    permissions.require_owner(principal, "adding memories")
    inp = _confined(principal, inp)
    if not inp.infer:
        return await add_verbatim(db, providers, principal, inp)
    inference.require_llm(providers)
    if not wait:
        event_id = await jobs.submit(db, queue, principal.project_id, JobKind.ADD, payload(inp))
        return AddResult(event_id=event_id, status=JobStatus.PENDING, message=ACCEPTED)
    return await _infer_now(db, providers, principal.project_id, inp)


def _confined(principal: Principal, inp: AddInput) -> AddInput:
    """A bound key's add carries its bound ids, and writes no memory without them (`domain.binding`)."""
    if not principal.binding:
        return inp
    ids = binding.confine_ids(principal.binding, {"user_id": inp.user_id, "agent_id": inp.agent_id})
    if inp.infer:
        binding.check_inferred_scopes(principal.binding, ids)
    return inp.model_copy(update=ids)


async def _infer_now(db: Database, providers: Providers, project_id: uuid.UUID, inp: AddInput) -> AddResult:
    """Process an infer=true add in the request: its event is written SUCCEEDED with the memories it
    produced, in the same transaction, or FAILED with the reason (then the error reaches the client)."""
    event_id = uuid.uuid4()

    async def finish(conn: Connection, outcomes: list[Outcome], report: inference.InferenceReport) -> None:
        await EventRepository(conn).insert_finished(
            project_id,
            event_id,
            JobKind.ADD.value,
            JobStatus.SUCCEEDED.value,
            payload=payload(inp),
            results=[o.as_event() for o in outcomes],
            metadata=report.as_dict(),
            completed=True,
        )

    try:
        outcomes, report = await inference.infer(db, providers, project_id, inp, event_id=event_id, finish=finish)
    except Exception as exc:
        async with db.connect() as conn:
            await EventRepository(conn).insert_finished(
                project_id,
                event_id,
                JobKind.ADD.value,
                JobStatus.FAILED.value,
                payload=payload(inp),
                error=jobs.failure_reason(exc, event_id),
                completed=True,
            )
        raise
    return AddResult(
        event_id=event_id, status=JobStatus.SUCCEEDED, message=PROCESSED, results=outcomes, graph=report.graph
    )


async def add_verbatim(
    db: Database, providers: Providers, principal: Principal, inp: AddInput, *, job: ClaimedJob | None = None
) -> AddResult:
    """Store each non-system message verbatim; exact duplicates in the scope become NOOPs.

    Embeddings are computed first (no transaction open), then everything is written by one
    statement, so a failing embedder or database leaves nothing half-written. As a `job` (an
    accepted asynchronous add), the memories and the job's SUCCEEDED commit together.
    """
    event_id = job.id if job is not None else uuid.uuid4()
    texts = msgs.verbatim_texts([m.model_dump() for m in inp.messages])
    observed, zone = inp.timestamp or datetime.now(UTC), inp.zone
    first_by_hash: dict[str, int] = {}
    items: list[NewMemory] = []
    duplicates: list[tuple[int, str, str]] = []  # (message index, text, hash of its first occurrence)
    for t in texts:
        h = msgs.text_hash(t.text)
        if h in first_by_hash:
            duplicates.append((t.index, t.text, h))
            continue
        first_by_hash[h] = t.index
        period = time_expressions.event_period(t.text, observed, zone)  # "yesterday" of the add's day and zone
        items.append(
            NewMemory(
                text=t.text,
                hash=h,
                scope=inp.scope,
                embedding=None,
                index=t.index,
                role=t.role,
                actor_id=t.name,
                categories=inp.categories,
                provenance={"event_id": str(event_id), "message_index": t.index},
                event_start=period[0] if period else None,
                event_end=period[1] if period else None,
            )
        )
    vectors = await providers.embedder.embed([it.text for it in items])
    items = [_with_embedding(it, v) for it, v in zip(items, vectors, strict=True)]
    defaults = AddDefaults(
        metadata=inp.metadata, immutable=inp.immutable, expiration_date=inp.expiration_date, created_at=inp.timestamp
    )

    async def write() -> list[Outcome]:
        if job is None:
            async with db.connect() as conn:
                out = await MemoryWriter(conn).insert_new(
                    principal.project_id, items, defaults, event_id=event_id, event_payload=payload(inp)
                )
            _with_duplicates(out, duplicates, first_by_hash)
            return out
        async with db.transaction() as conn:
            out = await MemoryWriter(conn).insert_new(principal.project_id, items, defaults, event_id=event_id)
            _with_duplicates(out, duplicates, first_by_hash)
            await jobs.complete(JobRepository(conn), job, [o.as_event() for o in out])
            return out

    outcomes = await retry_transient(write)
    return AddResult(event_id=event_id, status=JobStatus.SUCCEEDED, message=STORED, results=outcomes)


def _with_duplicates(outcomes: list[Outcome], duplicates: list[tuple[int, str, str]], first: dict[str, int]) -> None:
    """Report repeated texts of one request as NOOPs of their first occurrence, in request order."""
    by_index = {o.index: o for o in outcomes}
    for index, text, h in duplicates:
        outcomes.append(Outcome(index=index, id=by_index[first[h]].id, text=text, event=Op.NOOP))
    outcomes.sort(key=lambda o: o.index)


def _with_embedding(item: NewMemory, vector: NDArray[np.float32]) -> NewMemory:
    return replace(item, embedding=vector)


async def run_verbatim_add_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """Run an accepted add whose payload says infer=false (stored verbatim, like the synchronous path)."""
    inp = AddInput.model_validate(job.payload)
    await add_verbatim(db, providers, _job_principal(job), inp, job=job)


def _job_principal(job: ClaimedJob) -> Principal:
    nil = uuid.UUID(int=0)
    return Principal(org_id=nil, project_id=job.project_id, key_id=nil, user_email="", org_name="", project_name="")


async def run_add_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """Run an accepted infer=true add (the ADD job handler)."""
    await _infer(db, providers, job)


async def _infer(
    db: Database, providers: Providers, job: ClaimedJob
) -> tuple[list[Outcome], inference.InferenceReport]:
    inp = AddInput.model_validate(job.payload)

    async def finish(conn: Connection, outcomes: list[Outcome], report: inference.InferenceReport) -> None:
        await jobs.complete(JobRepository(conn), job, [o.as_event() for o in outcomes], metadata=report.as_dict())

    return await inference.infer(db, providers, job.project_id, inp, event_id=job.id, finish=finish)
