"""Adding memories: verbatim (infer=false) synchronously in one statement; inferred (infer=true) as a job.

Load -> think -> apply: nothing holds a database transaction open across an embedding or LLM call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from memserver.domain.add import AddInput
from memserver.domain.changes import AddDefaults, NewMemory, Op, Outcome
from memserver.domain.graph import GraphChanges
from memserver.domain.jobs import JobKind, JobStatus
from memserver.pipeline import messages as msgs
from memserver.providers.registry import Providers
from memserver.services import graph, inference, jobs
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memory_writes import MemoryWriter
from memserver.types import Principal

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
    if not inp.infer:
        return await add_verbatim(db, providers, principal, inp)
    inference.require_llm(providers)
    if not wait:
        event_id = await jobs.submit(db, queue, principal.project_id, JobKind.ADD, payload(inp))
        return AddResult(event_id=event_id, status=JobStatus.PENDING, message=ACCEPTED)
    job = await jobs.claim(db, await jobs.create(db, principal.project_id, JobKind.ADD, payload(inp)))
    assert job is not None  # just created, and no runner was told about it
    try:
        outcomes, report = await _infer(db, providers, job)
    except Exception as exc:
        await jobs.fail(db, job, exc)
        raise
    return AddResult(
        event_id=job.id, status=JobStatus.SUCCEEDED, message=PROCESSED, results=outcomes, graph=report.graph
    )


async def add_verbatim(db: Database, providers: Providers, principal: Principal, inp: AddInput) -> AddResult:
    """Store each non-system message verbatim; exact duplicates in the scope become NOOPs.

    Embeddings are computed first (no transaction open), then everything is written by one
    statement, so a failing embedder or database leaves nothing half-written.
    """
    event_id = uuid.uuid4()
    texts = msgs.verbatim_texts([m.model_dump() for m in inp.messages])
    first_by_hash: dict[str, int] = {}
    items: list[NewMemory] = []
    duplicates: list[tuple[int, str, str]] = []  # (message index, text, hash of its first occurrence)
    for t in texts:
        h = msgs.text_hash(t.text)
        if h in first_by_hash:
            duplicates.append((t.index, t.text, h))
            continue
        first_by_hash[h] = t.index
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
            )
        )
    vectors = await providers.embedder.embed([it.text for it in items])
    items = [_with_embedding(it, v) for it, v in zip(items, vectors, strict=True)]
    defaults = AddDefaults(
        metadata=inp.metadata, immutable=inp.immutable, expiration_date=inp.expiration_date, created_at=inp.timestamp
    )
    async with db.connect() as conn:
        outcomes = await MemoryWriter(conn).add(
            principal.project_id, items, defaults, event_id=event_id, event_payload=payload(inp)
        )
    by_index = {o.index: o for o in outcomes}
    for index, text, h in duplicates:
        outcomes.append(Outcome(index=index, id=by_index[first_by_hash[h]].id, text=text, event=Op.NOOP))
    outcomes.sort(key=lambda o: o.index)
    return AddResult(event_id=event_id, status=JobStatus.SUCCEEDED, message=STORED, results=outcomes)


def _with_embedding(item: NewMemory, vector: Any) -> NewMemory:
    return replace(item, embedding=vector)


async def run_add_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """Run an accepted infer=true add (the ADD job handler)."""
    await _infer(db, providers, job)


async def _infer(
    db: Database, providers: Providers, job: ClaimedJob
) -> tuple[list[Outcome], inference.InferenceReport]:
    inp = AddInput.model_validate(job.payload)

    async def finish(conn: Any, outcomes: list[Outcome], report: inference.InferenceReport) -> None:
        await jobs.complete(JobRepository(conn), job, [o.as_event() for o in outcomes], metadata=report.as_dict())

    outcomes, report = await inference.infer(db, providers, job.project_id, inp, event_id=job.id, finish=finish)
    if report.graph_sync_job is not None:
        # Mirror after the add committed, without making the add wait: a Neo4j outage fails only the
        # GRAPH_SYNC job (its event shows why); the next sync of the scope copies it whole again.
        graph.start_sync(db, providers, report.graph_sync_job)
    return outcomes, report
