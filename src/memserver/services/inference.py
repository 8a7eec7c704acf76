"""infer=true: a conversation becomes ADD / UPDATE / DELETE / NOOP memory events, in one LLM call for a chat turn.

Load -> think -> apply, with no transaction open across an embedding or LLM call:
1. load: the target scopes' memories nearest to the new messages (one hybrid search);
2. think: ONE call extracts the facts and decides each against those memories (shown under small
   integer refs, never UUIDs); the new texts are embedded in one batch; a second call only for new
   facts whose nearest stored memory was not in the prompt (at most one, counted);
3. apply: one transaction through the single write path, which also completes the job. If a
   memory the model decided on changed meanwhile (a concurrent add), the add is thought again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain.add import AddInput
from memserver.domain.changes import (
    UNSET,
    AddDefaults,
    ChangeSet,
    MemoryEdit,
    MemoryRemoval,
    NewMemory,
    Noop,
    Outcome,
)
from memserver.domain.dates import Period
from memserver.domain.relations import GraphChanges
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.errors import NotConfigured, ServiceUnavailable
from memserver.pipeline import reconcile, time_expressions
from memserver.pipeline.categories import catalogue
from memserver.pipeline.messages import text_hash
from memserver.pipeline.prompts import extract
from memserver.pipeline.prompts import followup as followup_prompt
from memserver.pipeline.types import AddGroup, Candidate, Decision, ExtractionRequest, Speaker, speakers_for
from memserver.providers.llm.base import LLM, Usage
from memserver.providers.registry import Providers
from memserver.services import attachments, project_settings
from memserver.services import candidate_lookup as lookup
from memserver.services import graph as graph_service
from memserver.storage.db import Connection, Database, retry_transient
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_writes import MemoryWriter

log = logging.getLogger(__name__)

NO_LLM = (
    "infer=true needs an LLM, and no LLM is configured on this memserver. Configure any OpenAI-compatible "
    "chat endpoint with MEMSERVER_LLM__BASE_URL (and MEMSERVER_LLM__API_KEY, MEMSERVER_LLM__MODEL), e.g. "
    "OpenAI, Ollama, vLLM, LM Studio or a llama.cpp server; or send infer=false to store the messages verbatim."
)
MAX_THINKS = 3  # a concurrent add changed a decided-on memory: think again, at most this often


def require_llm(providers: Providers) -> LLM:
    if providers.llm is None:
        raise NotConfigured(NO_LLM)
    return providers.llm


@dataclass
class InferenceReport:
    """What an inferred add cost and did; stored on its event (`metadata`)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, served from the endpoint's prefix cache
    second_call: bool = False
    candidates: int = 0
    thinks: int = 0
    notes: list[str] = field(default_factory=list)
    graph: GraphChanges | None = None  # enable_graph: what the add did to the graph

    def note(self, notes: list[str]) -> None:
        """Add notes once each (an add thought again decides, and notes, again)."""
        self.notes += [n for n in notes if n not in self.notes]

    def add_usage(self, usage: Usage) -> None:
        self.llm_calls += usage.calls
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cached_prompt_tokens += usage.cached_prompt_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "second_call": self.second_call,
            "candidates": self.candidates,
            "notes": self.notes,
            **({"graph": self.graph.summary()} if self.graph is not None else {}),
        }


class _Stale(Exception):
    """A memory the model decided on changed between load and apply."""


Finish = Callable[[Connection, list[Outcome], InferenceReport], Awaitable[None]]


async def infer(
    db: Database,
    providers: Providers,
    project_id: uuid.UUID,
    inp: AddInput,
    *,
    event_id: uuid.UUID,
    finish: Finish,
) -> tuple[list[Outcome], InferenceReport]:
    """Extract and reconcile; `finish(conn, outcomes, report)` runs inside the apply transaction."""
    llm = require_llm(providers)
    report = InferenceReport()
    messages, images = await attachments.read_messages(
        inp.messages, reader=providers.documents, vision=llm.vision, notes=report.notes
    )
    speakers = speakers_for(user_id=inp.user_id, agent_id=inp.agent_id)
    scopes = {s: _scope_of(inp, s) for s in speakers}
    # The project's settings are read while the messages are embedded and the candidates loaded.
    settings, loaded = await asyncio.gather(
        project_settings.project_settings(db, project_id),
        lookup.load(db, providers, project_id, scopes, messages),
    )
    # The project's instructions, categories and prompts apply where the request gave none.
    inp = project_settings.with_project_defaults(settings, inp)
    graph_on = bool(inp.enable_graph)  # the request's, else the project's
    for attempt in range(MAX_THINKS):
        report.thinks += 1
        if attempt:  # a concurrent add changed a memory the model decided on: load again
            loaded = await lookup.load(db, providers, project_id, scopes, messages)
        candidates = loaded.candidates
        report.candidates = len(candidates)
        plan = (
            await graph_service.load_context(db, project_id, inp, scopes, [c for c, _ in candidates], messages)
            if graph_on
            else None
        )
        req = ExtractionRequest(
            groups=[AddGroup(observed_at=inp.timestamp or datetime.now(UTC), messages=messages)],
            candidates=[c for c, _ in candidates],
            speakers=speakers,
            includes=inp.includes,
            excludes=inp.excludes,
            custom_instructions=inp.custom_instructions,
            agent_custom_instructions=inp.agent_custom_instructions,
            categories=catalogue(inp.custom_categories),
            graph=plan.context if plan is not None else None,
        )
        decisions, vectors, later = await _think(
            db, providers, llm, project_id, req, scopes, images, report, loaded.radii
        )
        if plan is not None:
            await graph_service.plan_writes(providers, plan, decisions, scopes, vectors, notes=report.notes)
        seen = [*candidates, *later]  # the first prompt's memories and the follow-up's, alike
        changes = _changes(inp, scopes, decisions, vectors, {c.id: p for c, p in seen}, event_id, req.observed_at)
        shown = {c.id: c for c, _ in seen}
        try:
            outcomes = await _apply(
                db,
                providers,
                project_id,
                inp,
                scopes,
                changes,
                decisions,
                shown,
                plan,
                req.observed_at,
                event_id,
                report,
                finish,
            )
            return outcomes, report
        except _Stale:
            log.info("add %s: a memory changed while the model was deciding; thinking again", event_id)
    raise ServiceUnavailable("the memories of this scope kept changing while the add was processed; retry the add")


async def _apply(
    db: Database,
    providers: Providers,
    project_id: uuid.UUID,
    inp: AddInput,
    scopes: dict[Speaker, Scope],
    changes: ChangeSet,
    decisions: list[Decision],
    shown: dict[uuid.UUID, Candidate],
    plan: Any,
    observed_at: datetime,
    event_id: uuid.UUID,
    report: InferenceReport,
    finish: Finish,
) -> list[Outcome]:
    """The write, one transaction (run again after a deadlock): the decided memories are still as the model
    saw them (else _Stale), the changes, the graph (enable_graph) and the job's completion commit together."""

    async def apply_once() -> list[Outcome]:
        async with db.transaction() as conn:
            await _check_fresh(conn, project_id, decisions, shown, scopes)
            outcomes = await MemoryWriter(conn).apply(project_id, changes, _defaults(inp), event_id=event_id)
            if plan is not None:  # the relations commit with the memories they came from
                report.graph = await graph_service.write(
                    conn, project_id, plan, _memory_of(decisions, outcomes), event_id=event_id, observed_at=observed_at
                )
                if providers.graph_mirror is not None and report.graph.relation_ids:
                    await graph_service.enqueue_sync(conn, project_id, _scopes(inp, decisions))
            await finish(conn, outcomes, report)
            return outcomes

    # a deadlock or serialization failure with a concurrent add is retried (bounded)
    return await retry_transient(apply_once)


def _scopes(inp: AddInput, decisions: list[Decision]) -> list[Scope]:
    return list(dict.fromkeys(_scope_of(inp, d.speaker) for d in decisions))


def _scope_of(inp: AddInput, speaker: Speaker) -> Scope:
    """Attribution: with both ids, user facts go under user_id only and assistant facts under agent_id only."""
    both = bool(inp.user_id and inp.agent_id)
    return Scope(
        user_id=inp.user_id if not (both and speaker == "assistant") else None,
        agent_id=inp.agent_id if not (both and speaker == "user") else None,
        app_id=inp.app_id,
        run_id=inp.run_id,
    )


async def _think(
    db: Database,
    providers: Providers,
    llm: LLM,
    project_id: uuid.UUID,
    req: ExtractionRequest,
    scopes: dict[Speaker, Scope],
    images: list[dict[str, Any]],
    report: InferenceReport,
    radii: dict[int, tuple[NDArray[np.float32], float]],
) -> tuple[list[Decision], dict[str, Any], list[lookup.Shown]]:
    """The LLM decides; returns the decisions, the embedding of each new text, and the memories the
    follow-up call showed (the first prompt's are the request's)."""
    prompt = extract.build(req)
    if images:  # a vision model sees the images next to the conversation
        prompt[-1] = {**prompt[-1], "content": [{"type": "text", "text": prompt[-1]["content"]}, *images]}
    first = await llm.generate(
        prompt, extract.reply_model(req), context=extract.context(req), budget=extract.budget(req)
    )
    report.add_usage(first.usage)
    report.note(first.notes)  # what the reply's parse dropped or changed
    reply = first.value
    notes: list[str] = []
    decisions = reconcile.decide(req, reply, notes=notes)
    vectors = await _embed(providers, decisions)
    found = await lookup.followup(db, project_id, req, reply, decisions, vectors, scopes, radii)
    if found is None:
        report.note(notes)
        return decisions, vectors, []
    followup, later = found
    report.second_call = True
    second = await llm.generate(
        followup_prompt.build(followup, followup_prompt.facts_without_ref(reply)),
        followup_prompt.Reply,
        context=followup_prompt.context(followup),
        budget=extract.budget(followup),
    )
    report.add_usage(second.usage)
    report.note(second.notes)
    notes.clear()  # decided again, with the follow-up's answers
    decisions = reconcile.decide(req, reply, (followup, second.value), notes=notes)
    report.note(notes)
    return decisions, await _embed(providers, decisions), later


async def _embed(providers: Providers, decisions: list[Decision]) -> dict[str, Any]:
    """The new memory texts' embeddings, and (enable_graph) the entity names', in one request."""
    names = [n for d in decisions if d.op != "DELETE" for r in d.relations for n in (r.source, r.target)]
    texts = list(dict.fromkeys([*(d.text for d in decisions if d.op in ("ADD", "UPDATE")), *names]))
    if not texts:
        return {}
    return dict(zip(texts, await providers.embedder.embed(texts), strict=True))


def _changes(
    inp: AddInput,
    scopes: dict[Speaker, Scope],
    decisions: list[Decision],
    vectors: dict[str, Any],
    provenance: dict[uuid.UUID, Any],
    event_id: uuid.UUID,
    observed_at: datetime,
) -> ChangeSet:
    changes = ChangeSet()
    zone = inp.zone
    for i, d in enumerate(decisions):
        source = {"event_id": str(event_id), "message_indices": sorted(d.sources)}
        period = _event_period(d, observed_at, zone) if d.op in ("ADD", "UPDATE") else None
        if d.op == "ADD":
            changes.adds.append(
                NewMemory(
                    text=d.text,
                    hash=text_hash(d.text),
                    scope=scopes[d.speaker],
                    embedding=vectors[d.text],
                    index=i,
                    role=d.speaker,
                    categories=d.categories or None,
                    provenance={"sources": [source]},
                    source="inferred",
                    event_start=period.start if period else None,
                    event_end=period.end if period else None,
                )
            )
        elif d.op == "UPDATE" and d.target_id is not None:
            previous = provenance.get(d.target_id) or {}
            sources = [*(previous.get("sources") or []), source] if isinstance(previous, dict) else [source]
            changes.edits.append(
                MemoryEdit(
                    memory_id=d.target_id,
                    text=d.text,
                    hash=text_hash(d.text),
                    embedding=vectors[d.text],
                    categories=d.categories or None,
                    provenance={"sources": sources},
                    event_period=period or UNSET,  # an update that names no time keeps the memory's period
                )
            )
        elif d.op == "DELETE" and d.target_id is not None:
            changes.removals.append(MemoryRemoval(memory_id=d.target_id, replaced_by_index=_superseder(d, decisions)))
        elif d.op == "NOOP":
            changes.noops.append(Noop(memory_id=d.target_id, text=d.text, index=i))
    return changes


def _event_period(d: Decision, observed_at: datetime, zone: tzinfo | None) -> Period | None:
    """The dates the model gave the fact, as local days of the add's zone; without them, the time the fact's own
    words name ("Ran a marathon on 2025-04-12"), read against when the messages were observed."""
    if d.event_start and d.event_end:
        first, after = extract.period_of(d.event_start)[0], extract.period_of(d.event_end)[1]
        local = zone or UTC
        return Period(*(datetime.combine(x, time(), tzinfo=local).astimezone(UTC) for x in (first, after)))
    found = time_expressions.event_period(d.text, observed_at, zone)
    return Period(*found) if found else None


def _memory_of(decisions: list[Decision], outcomes: list[Outcome]) -> dict[int, uuid.UUID | None]:
    """Decision index -> the memory it wrote (ADD, or the duplicate it met) or kept (UPDATE, NOOP)."""
    added = {o.index: o.id for o in outcomes if o.index >= 0}
    return {i: added.get(i) if d.op == "ADD" else d.target_id for i, d in enumerate(decisions)}


def _superseder(deleted: Decision, decisions: list[Decision]) -> int | None:
    """A memory deleted because the same message states a new fact is superseded by that fact, not erased.

    ("I have been vegetarian since January" deletes "Loves steak" and adds "Is vegetarian": the old
    memory is kept as superseded, replaced_by the new one; "forget my address" adds nothing: deleted.)
    """
    for i, d in enumerate(decisions):
        if d.op == "ADD" and d.speaker == deleted.speaker and set(d.sources) & set(deleted.sources):
            return i
    return None


async def _check_fresh(
    conn: Connection,
    project_id: uuid.UUID,
    decisions: list[Decision],
    shown: dict[uuid.UUID, Candidate],
    scopes: dict[Speaker, Scope],
) -> None:
    """Lock the memories the model decided on; any that changed or vanished since it saw them -> _Stale.

    Every target was shown (first prompt or follow-up) and is of its speaker's scope (pipeline.reconcile);
    a target that is not is never written."""
    targets = {d.target_id: d.speaker for d in decisions if d.op in ("UPDATE", "DELETE") and d.target_id is not None}
    if not targets:
        return
    rows = {r.id: r for r in await MemoryRepository(conn).get_for_update(project_id, list(targets))}
    for mid, speaker in targets.items():
        row = rows.get(mid)
        seen = shown.get(mid)
        if row is None or seen is None or row.memory != seen.text or row.immutable:
            raise _Stale(str(mid))
        if Scope(**{c: getattr(row, c) for c in ENTITY_FIELDS}) != scopes[speaker]:
            raise RuntimeError(f"add decided on memory {mid} of another scope than its speaker's")


def _defaults(inp: AddInput) -> AddDefaults:
    return AddDefaults(
        metadata=inp.metadata, immutable=inp.immutable, expiration_date=inp.expiration_date, created_at=inp.timestamp
    )
