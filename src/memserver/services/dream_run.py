"""A Dream synthesis run (a DREAM job): load -> think -> apply, with no transaction open across the LLM call.

1. load: the user's newest `MAX_MEMORIES` eligible memories (see `storage.repositories.dream`) and their
   existing patterns with their evidence. Too few memories, or exactly what the last run read (the input
   hash): the run ends SUCCEEDED with the reason in `metadata.skipped`, and no LLM call is made;
2. think: ONE call (`pipeline.prompts.dream`); `pipeline.synthesis.decide` turns its patterns into ADD,
   UPDATE or NOOP; new texts are embedded in one batch;
3. apply: one transaction through the single write path (history rows, webhook deliveries), the scheduler's
   state and the job's SUCCEEDED together, so a runner that lost its lease applies nothing. A source deleted
   in between drops out of a pattern's evidence; a pattern left with fewer than two is not written.

A pattern is a memory of the user (`source = 'synthesized'`, read back as `synthesized: true`) whose
provenance links it to its evidence: `{"synthesis": {"sources": [ids], "evidence_hash", "event_id",
"synthesized_at"}}`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memserver.config import DreamSettings
from memserver.domain.changes import SYNTHESIZED, AddDefaults, MemoryEdit, NewMemory, Op
from memserver.domain.rows.dream import DreamPatternRow
from memserver.domain.scope import Scope
from memserver.errors import Conflict
from memserver.pipeline import synthesis
from memserver.pipeline.messages import text_hash
from memserver.pipeline.prompts import dream as prompt
from memserver.pipeline.synthesis import Pattern, Source, Write
from memserver.providers.llm.base import Usage
from memserver.providers.registry import Providers
from memserver.services import dream, jobs, project_settings, usage
from memserver.services.documents import require_llm
from memserver.storage.db import Connection, Database, retry_transient
from memserver.storage.repositories.dream import DreamRepository
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_writes import MemoryWriter

MAX_PATTERNS_SHOWN = 50  # a user's patterns the model sees (most recently written first)
FAILED_RETRY_S = 86_400.0  # a failed run's user is due again after this (or the cadence, if shorter)


@dataclass
class Loaded:
    """What a run reads: the memories (oldest first), the patterns, the content hash of every possible source,
    the newest `seq` seen, and the input hash of this run and of the last one."""

    memories: list[Source]
    patterns: list[Pattern]
    hashes: dict[uuid.UUID, str]
    seq: int
    input_hash: str
    last_hash: str | None


@dataclass
class Report:
    """What a run did and cost; stored on its event (`metadata`)."""

    trigger: str
    considered: int = 0
    patterns_shown: int = 0
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        u = self.usage
        return {
            "trigger": self.trigger,
            "considered": self.considered,
            "patterns_shown": self.patterns_shown,
            "notes": list(dict.fromkeys(self.notes)),
            # the keys every LLM-spending job writes (`usage.as_metadata`): the project's usage per day reads them
            **usage.as_metadata(u),
            **extra,
        }


def run_handler(settings: DreamSettings) -> jobs.Handler:
    """The DREAM job handler, bound to the server's Dream settings."""

    async def handle(db: Database, providers: Providers, job: ClaimedJob) -> None:
        await run_job(db, providers, job, settings)

    return handle


async def run_job(db: Database, providers: Providers, job: ClaimedJob, settings: DreamSettings) -> None:
    user_id = str(job.payload["user_id"])
    report = Report(trigger=str(job.payload.get("trigger") or "schedule"))
    stored = await project_settings.section(db, job.project_id, dream.SECTION)
    if not dream.enabled(stored):
        return await _skip(db, job, report, None, "Synthesis is off for this project")
    loaded = await _load(db, job.project_id, user_id, int(stored.get("boundary_seq") or 0), settings)
    report.considered, report.patterns_shown = len(loaded.memories), len(loaded.patterns)
    if len(loaded.memories) < settings.min_memories:
        why = f"{len(loaded.memories)} eligible memories; a run needs at least {settings.min_memories}"
        return await _skip(db, job, report, loaded, why, short=True)
    if loaded.input_hash == loaded.last_hash:
        return await _skip(db, job, report, loaded, "no new evidence since the last run")
    try:
        writes, vectors = await _think(providers, loaded, settings, report)
    except Exception:  # retried by the job machinery; the scheduler leaves the user alone meanwhile
        await jobs.record_spent(db, job, usage.as_metadata(report.usage))
        async with db.connect() as conn:
            await DreamRepository(conn).defer(job.project_id, user_id, min(settings.cadence_s, FAILED_RETRY_S))
        raise
    await retry_transient(lambda: _apply(db, job, user_id, loaded, writes, vectors, settings, report))


async def _load(db: Database, project_id: uuid.UUID, user_id: str, boundary: int, settings: DreamSettings) -> Loaded:
    async with db.connect() as conn:
        repo = DreamRepository(conn)
        rows = await repo.sources(project_id, user_id, boundary, settings.max_memories)
        pattern_rows = await repo.patterns(project_id, user_id, MAX_PATTERNS_SHOWN)
        state = await repo.state(project_id, user_id)
        shown = {r.id for r in rows}
        cited = {s for p in pattern_rows for s in _sources_of(p) if s not in shown}
        hashes = await repo.hashes(project_id, sorted(cited))
    memories = [Source(r.id, r.memory, r.hash, r.created_at, tuple(r.categories or ())) for r in reversed(rows)]
    hashes.update({m.id: m.hash for m in memories})
    patterns = [
        Pattern(
            id=p.id,
            text=p.memory,
            hash=p.hash,
            sources=tuple(s for s in _sources_of(p) if s in hashes),
            evidence_hash=_synthesis(p).get("evidence_hash"),
        )
        for p in pattern_rows
    ]
    seq = max([rows[0].seq if rows else 0, state.touched_seq if state else 0])
    return Loaded(
        memories,
        patterns,
        hashes,
        seq,
        synthesis.input_hash(memories, patterns),
        state.last_input_hash if state else None,
    )


def _synthesis(row: DreamPatternRow) -> dict[str, Any]:
    found = (row.provenance or {}).get("synthesis")
    return found if isinstance(found, dict) else {}


def _sources_of(row: DreamPatternRow) -> list[uuid.UUID]:
    out = []
    for s in _synthesis(row).get("sources") or []:
        try:
            out.append(uuid.UUID(str(s)))
        except ValueError:
            continue
    return out


async def _think(
    providers: Providers, loaded: Loaded, settings: DreamSettings, report: Report
) -> tuple[list[Write], dict[str, Any]]:
    """The one call, its patterns as writes, and the embeddings of the new texts."""
    llm = require_llm(providers, dream.FEATURE)
    memories, patterns = synthesis.prompt_inputs(loaded.memories, loaded.patterns)
    most = settings.max_patterns_per_run
    gen = await usage.spend(
        report.usage.add,  # also what a failing call cost (recorded on the event by run_job)
        llm.generate(
            prompt.build(memories, patterns, most),
            prompt.Reply,
            context=prompt.context(len(memories), len(patterns), most),
            budget=prompt.budget(most),
        ),
    )
    report.notes += gen.notes
    writes = synthesis.decide(
        gen.value, loaded.memories, loaded.patterns, loaded.hashes, max_writes=most, notes=report.notes
    )
    old: dict[uuid.UUID | None, str] = {p.id: p.text for p in loaded.patterns}
    texts = list(
        dict.fromkeys(w.text for w in writes if w.op == "ADD" or (w.op == "UPDATE" and w.text != old.get(w.target)))
    )
    vectors = dict(zip(texts, await providers.embedder.embed(texts), strict=True)) if texts else {}
    return writes, vectors


async def _apply(
    db: Database,
    job: ClaimedJob,
    user_id: str,
    loaded: Loaded,
    writes: list[Write],
    vectors: dict[str, Any],
    settings: DreamSettings,
    report: Report,
) -> None:
    """One transaction: the patterns, the scheduler's state and the job's SUCCEEDED commit together."""
    report = Report(report.trigger, report.considered, report.patterns_shown, report.usage, list(report.notes))
    async with db.transaction() as conn:
        results = await _write(conn, job, user_id, loaded, writes, vectors, report)
        repo = DreamRepository(conn)
        # the input the next run would read if nothing new arrives: these memories and the patterns as written
        after = [
            Pattern(p.id, p.memory, p.hash, ())
            for p in await repo.patterns(job.project_id, user_id, MAX_PATTERNS_SHOWN)
        ]
        await repo.record_run(
            job.project_id,
            user_id,
            seq=loaded.seq,
            input_hash=synthesis.input_hash(loaded.memories, after),
            patterns=len(after),
            cadence_s=settings.cadence_s,
        )
        await jobs.complete(JobRepository(conn), job, results, metadata=report.as_dict())


async def _write(
    conn: Connection,
    job: ClaimedJob,
    user_id: str,
    loaded: Loaded,
    writes: list[Write],
    vectors: dict[str, Any],
    report: Report,
) -> list[dict[str, Any]]:
    """Write the ADDs and UPDATEs through the single write path; returns the event's results."""
    repo = DreamRepository(conn)
    present = await repo.hashes(job.project_id, sorted({s for w in writes for s in w.sources}))
    targets = [w.target for w in writes if w.op == "UPDATE" and w.target is not None]
    locked = {r.id: r for r in await MemoryRepository(conn).get_for_update(job.project_id, targets)}
    seen = {p.id: p for p in loaded.patterns}
    now = datetime.now(UTC).isoformat()
    writer = MemoryWriter(conn)
    results: list[dict[str, Any]] = []
    adds: list[tuple[NewMemory, list[str]]] = []
    for i, w in enumerate(writes):
        sources = [s for s in w.sources if s in present]
        if w.op == "NOOP":
            results.append(_result(w.target, Op.NOOP, w.text, sources))
            continue
        if len(sources) < prompt.MIN_EVIDENCE:
            report.notes.append("a pattern whose evidence was deleted meanwhile was not written")
            continue
        evidence = synthesis.digest((s, present[s]) for s in sources)
        ids = [str(s) for s in sources]
        provenance = {
            "synthesis": {"sources": ids, "evidence_hash": evidence, "event_id": str(job.id), "synthesized_at": now}
        }
        if w.op == "ADD":
            memory = NewMemory(
                text=w.text,
                hash=text_hash(w.text),
                scope=Scope(user_id=user_id),
                embedding=vectors[w.text],
                index=i,
                categories=w.categories or None,
                provenance=provenance,
                source=SYNTHESIZED,
            )
            adds.append((memory, ids))
            continue
        row, before = locked.get(w.target) if w.target else None, seen.get(w.target) if w.target else None
        if row is None or before is None or row.hash != before.hash or row.immutable:
            report.notes.append("a pattern changed or deleted since the run read it was not rewritten")
            continue
        changed = w.text != row.memory
        edit = MemoryEdit(
            memory_id=row.id,
            text=w.text if changed else None,
            hash=text_hash(w.text) if changed else None,
            embedding=vectors.get(w.text) if changed else None,
            categories=w.categories or None,
            provenance=provenance,
        )
        try:
            async with conn.begin_nested():  # a text another memory of the user holds fails this edit only
                _, previous = await writer.edit(job.project_id, edit, event_id=job.id)
        except Conflict:
            report.notes.append("a pattern rewritten to the text of another memory was left as it was")
            continue
        results.append(_result(row.id, Op.UPDATE, w.text, sources, previous=previous))
    if adds:
        outcomes = await writer.insert_new(job.project_id, [m for m, _ in adds], AddDefaults(), event_id=job.id)
        by_index = {o.index: o for o in outcomes}
        for memory, ids in adds:
            o = by_index[memory.index]
            results.append(_result(o.id, o.event, memory.text, [uuid.UUID(s) for s in ids]))
    return results


def _result(
    memory_id: uuid.UUID | None, op: Op, text: str, sources: list[uuid.UUID], *, previous: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": str(memory_id) if memory_id else None, "event": op.value, "data": {"memory": text}}
    if previous is not None and previous != text:
        item["previous_memory"] = previous
    item["sources"] = [str(s) for s in sources]
    return item


async def _skip(
    db: Database, job: ClaimedJob, report: Report, loaded: Loaded | None, why: str, *, short: bool = False
) -> None:
    """End the run without a call: SUCCEEDED, with the reason in `metadata.skipped`."""
    async with db.transaction() as conn:
        if loaded is not None:
            await DreamRepository(conn).record_skip(
                job.project_id, str(job.payload["user_id"]), seq=loaded.seq, short=short
            )
        await jobs.complete(JobRepository(conn), job, [], metadata=report.as_dict(skipped=why))
