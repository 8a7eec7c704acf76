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
from pydantic import ValidationError

from memserver.domain import binding
from memserver.domain.add import AddInput, content_parts, ignored_notes
from memserver.domain.changes import AddDefaults, NewMemory, Op, Outcome
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.principal import Principal
from memserver.domain.relations import GraphChanges
from memserver.pipeline import messages as msgs
from memserver.pipeline import time_expressions
from memserver.providers.registry import Providers
from memserver.services import jobs, permissions
from memserver.services.inference.report import InferenceReport
from memserver.services.inference.run import AddInRun, InferredAdd, require_llm
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
    require_llm(providers)
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

    async def finish(conn: Connection, outcomes: list[Outcome], report: InferenceReport) -> None:
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

    run = _run(db, providers, project_id, [AddInRun(inp=inp, event_id=event_id, finish=finish)])
    try:
        (outcomes,) = await run.run()
    except Exception as exc:
        spent = run.spent()[0]  # what the add cost until it failed
        async with db.connect() as conn:
            await EventRepository(conn).insert_finished(
                project_id,
                event_id,
                JobKind.ADD.value,
                JobStatus.FAILED.value,
                payload=payload(inp),
                error=jobs.failure_reason(exc, event_id),
                metadata=spent if spent["llm_calls"] else None,
                completed=True,
            )
        raise
    graph = run.adds[0].report.graph
    return AddResult(event_id=event_id, status=JobStatus.SUCCEEDED, message=PROCESSED, results=outcomes, graph=graph)


def _run(db: Database, providers: Providers, project_id: uuid.UUID, adds: list[AddInRun]) -> InferredAdd:
    return InferredAdd(db=db, providers=providers, llm=require_llm(providers), project_id=project_id, adds=adds)


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

    notes = ignored_notes(inp.ignored)
    metadata = {"notes": notes} if notes else None

    async def write() -> list[Outcome]:
        if job is None:
            async with db.connect() as conn:
                out = await MemoryWriter(conn).insert_new(
                    principal.project_id,
                    items,
                    defaults,
                    event_id=event_id,
                    event_payload=payload(inp),
                    event_metadata=metadata,
                )
            _with_duplicates(out, duplicates, first_by_hash)
            return out
        async with db.transaction() as conn:
            out = await MemoryWriter(conn).insert_new(principal.project_id, items, defaults, event_id=event_id)
            _with_duplicates(out, duplicates, first_by_hash)
            await jobs.complete(JobRepository(conn), job, [o.as_event() for o in out], metadata=metadata)
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
    await _run_jobs(db, providers, [job], [_job_add(job)])


async def _run_jobs(db: Database, providers: Providers, claimed: list[ClaimedJob], adds: list[AddInRun]) -> None:
    """Run the adds of these jobs as one inference run; when it fails, each job's event keeps its share of what
    the run's LLM calls cost until then (a failed attempt spent it too)."""
    run = _run(db, providers, claimed[0].project_id, adds)
    try:
        await run.run()
    except Exception:
        for job, spent in zip(claimed, run.spent(), strict=True):
            await jobs.record_spent(db, job, spent)  # what the attempt cost until it failed
        raise


# ----------------------------------------------------------------------------------------------
# coalesced adds: queued infer=true adds of one scope run as one extraction call
# ----------------------------------------------------------------------------------------------
# What shapes the prompt, and the scope: adds that differ in any of these never share a call.
_SHARED_FIELDS = (
    "user_id",
    "agent_id",
    "app_id",
    "run_id",
    "infer",
    "enable_graph",
    "custom_categories",
    "includes",
    "excludes",
    "custom_instructions",
    "agent_custom_instructions",
)


def add_batching(max_adds: int, max_chars: int) -> jobs.Batching:
    """Queued adds of one scope behind a claimed one join its extraction call: infer=true adds of text
    messages with the same prompt-shaping fields, at most `max_adds` in all and `max_chars` message characters
    (MEMSERVER_WORKER__COALESCE_MAX_ADDS, __COALESCE_MAX_CHARS). An add with documents or images runs alone
    (reading them can fail on its own)."""

    def joins(first: dict[str, Any], queued: list[dict[str, Any]]) -> int:
        if not _coalescable(first):
            return 0
        chars, n = _chars(first), 0
        for payload in queued[: max_adds - 1]:
            chars += _chars(payload)
            if (
                not _coalescable(payload)
                or chars > max_chars
                or any(payload.get(f) != first.get(f) for f in _SHARED_FIELDS)
            ):
                break
            n += 1
        return n

    return jobs.Batching(max_jobs=max_adds, joins=joins, handler=run_add_batch)


def _coalescable(payload: dict[str, Any]) -> bool:
    messages = payload.get("messages")
    return (
        payload.get("infer") is not False
        and isinstance(messages, list)
        and all(isinstance(m, dict) and _text_only(m.get("content")) for m in messages)
    )


def _text_only(content: Any) -> bool:
    return isinstance(content, str) or (
        isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content)
    )


def _chars(payload: dict[str, Any]) -> int:
    return sum(
        len(p.get("text") or "") if isinstance(p, dict) else 0
        for m in payload.get("messages") or []
        for p in content_parts(m.get("content"))
    )


async def run_add_batch(
    db: Database, providers: Providers, batch: list[ClaimedJob]
) -> list[tuple[ClaimedJob, Exception]]:
    """Run queued adds of one scope as one inference run (one extraction call): each add's memories, relations
    and SUCCEEDED event commit in acceptance order, in one transaction. An add whose payload is invalid fails
    on its own; any other failure is every add's (the caller runs each again alone)."""
    adds: list[AddInRun] = []
    running: list[ClaimedJob] = []
    alone: list[tuple[ClaimedJob, Exception]] = []
    for job in batch:
        try:
            adds.append(_job_add(job))
            running.append(job)
        except ValidationError as exc:
            alone.append((job, exc))
    if adds:
        await _run_jobs(db, providers, running, adds)
    return alone


def _job_add(job: ClaimedJob) -> AddInRun:
    """An accepted add as a run's add: its event is the job's, completed inside the apply transaction."""

    async def finish(conn: Connection, outcomes: list[Outcome], report: InferenceReport) -> None:
        await jobs.complete(JobRepository(conn), job, [o.as_event() for o in outcomes], metadata=report.as_dict())

    return AddInRun(inp=AddInput.model_validate(job.payload), event_id=job.id, finish=finish)
