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
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain.add import AddInput
from memserver.domain.changes import AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory, Noop, Outcome
from memserver.domain.graph import GraphChanges
from memserver.domain.scope import Scope
from memserver.errors import NotConfigured, ServiceUnavailable
from memserver.pipeline import coverage, extract, reconcile
from memserver.pipeline.categories import catalogue
from memserver.pipeline.messages import text_hash
from memserver.pipeline.query import hints as query_hints
from memserver.pipeline.types import Candidate, Decision, ExtractionRequest, InMessage, Speaker, speakers_for
from memserver.providers.llm.base import LLM, Usage
from memserver.providers.registry import Providers
from memserver.services import attachments
from memserver.services import graph as graph_service
from memserver.services import settings as project_settings
from memserver.storage.db import Connection, Database, retry_transient
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_writes import MemoryWriter
from memserver.storage.repositories.search import SearchRepository

log = logging.getLogger(__name__)

NO_LLM = (
    "infer=true needs an LLM, and no LLM is configured on this memserver. Configure any OpenAI-compatible "
    "chat endpoint with MEMSERVER_LLM__BASE_URL (and MEMSERVER_LLM__API_KEY, MEMSERVER_LLM__MODEL), e.g. "
    "OpenAI, Ollama, vLLM, LM Studio or a llama.cpp server; or send infer=false to store the messages verbatim."
)
CANDIDATES = 10  # memories shown to the model: the nearest to the new messages (their mean embedding)
# ... plus each message's own nearest, so a fact's nearest memories are usually shown without asking
# (facts come from single messages; the exchange as a whole can sit far from some of them). Messages
# beyond PER_MESSAGE_LIMIT are searched for as one text, and their facts checked after the reply.
PER_MESSAGE = 3
PER_MESSAGE_LIMIT = 8
NAME_CANDIDATES = 5  # ... and the newest memories that mention a name the messages use
MAX_NAMES = 8
# A new fact whose nearest stored memory is at least this similar, and was not shown to the model,
# is reconciled in a second call. (all-MiniLM-L6-v2: restatements of one fact score ~0.75-0.95,
# unrelated facts of one person ~0.1-0.4.)
SECOND_CALL_SIMILARITY = 0.75
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
    second_call: bool = False
    candidates: int = 0
    thinks: int = 0
    notes: list[str] = field(default_factory=list)
    graph: GraphChanges | None = None  # enable_graph: what the add did to the graph

    def add_usage(self, usage: Usage) -> None:
        self.llm_calls += usage.calls
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
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
        _load_candidates(db, providers, project_id, scopes.values(), messages),
    )
    # The project's instructions, categories and prompts apply where the request gave none.
    inp = project_settings.with_project_defaults(settings, inp)
    graph_on = bool(inp.enable_graph)  # the request's, else the project's
    for attempt in range(MAX_THINKS):
        report.thinks += 1
        if attempt:  # a concurrent add changed a memory the model decided on: load again
            loaded = await _load_candidates(db, providers, project_id, scopes.values(), messages)
        candidates = loaded.candidates
        report.candidates = len(candidates)
        plan = (
            await graph_service.load_context(db, project_id, inp, scopes, [c for c, _ in candidates], messages)
            if graph_on
            else None
        )
        req = ExtractionRequest(
            messages=messages,
            candidates=[c for c, _ in candidates],
            observed_at=inp.timestamp or datetime.now(UTC),
            speakers=speakers,
            includes=inp.includes,
            excludes=inp.excludes,
            custom_instructions=inp.custom_instructions,
            agent_custom_instructions=inp.agent_custom_instructions,
            categories=catalogue(inp.custom_categories),
            graph=plan.context if plan is not None else None,
        )
        decisions, vectors = await _think(db, providers, llm, project_id, req, scopes, images, report, loaded.radii)
        if plan is not None:
            await graph_service.plan_writes(providers, plan, decisions, scopes, vectors)
        changes = _changes(inp, scopes, decisions, vectors, {c.id: p for c, p in candidates}, event_id)
        shown = {c.id: c for c, _ in candidates}
        apply = functools.partial(
            _apply, db, providers, project_id, inp, changes, decisions, shown, plan, req.observed_at, event_id
        )
        try:
            # a deadlock or serialization failure with a concurrent add is retried (bounded)
            return await retry_transient(functools.partial(apply, report, finish)), report
        except _Stale:
            log.info("add %s: a memory changed while the model was deciding; thinking again", event_id)
    raise ServiceUnavailable("the memories of this scope kept changing while the add was processed; retry the add")


async def _apply(
    db: Database,
    providers: Providers,
    project_id: uuid.UUID,
    inp: AddInput,
    changes: ChangeSet,
    decisions: list[Decision],
    shown: dict[uuid.UUID, Candidate],
    plan: Any,
    observed_at: datetime,
    event_id: uuid.UUID,
    report: InferenceReport,
    finish: Finish,
) -> list[Outcome]:
    """One transaction: the decided memories are still as the model saw them (else _Stale), the changes,
    the graph (enable_graph) and the job's completion commit together."""
    async with db.transaction() as conn:
        await _check_fresh(conn, project_id, decisions, shown)
        outcomes = await MemoryWriter(conn).apply(project_id, changes, _defaults(inp), event_id=event_id)
        if plan is not None:  # the relations commit with the memories they came from
            report.graph = await graph_service.write(
                conn, project_id, plan, _memory_of(decisions, outcomes), event_id=event_id, observed_at=observed_at
            )
            if providers.graph_mirror is not None and report.graph.relation_ids:
                await graph_service.enqueue_sync(conn, project_id, _scopes(inp, decisions))
        await finish(conn, outcomes, report)
        return outcomes


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


@dataclass
class _Loaded:
    """The memories shown to the model, and what they prove about the rest (pipeline.coverage)."""

    candidates: list[tuple[Candidate, Any]]  # (candidate, its provenance)
    radii: dict[int, tuple[NDArray[np.float32], float]] = field(default_factory=dict)  # message -> (vector, radius)


async def _load_candidates(
    db: Database, providers: Providers, project_id: uuid.UUID, scopes: Collection[Scope], messages: list[InMessage]
) -> _Loaded:
    """The target scopes' memories the model must see, in one round trip: the CANDIDATES nearest to the
    exchange (the messages' mean embedding), each message's PER_MESSAGE nearest, and the newest
    NAME_CANDIDATES that mention a name the messages use (a vector can miss a person's memories)."""
    speaking = [m for m in messages if m.role in ("user", "assistant") and m.text.strip()]
    query = " ".join(m.text for m in speaking)[:2000].strip()
    if not query:
        return _Loaded([])
    per_message = speaking if len(speaking) <= PER_MESSAGE_LIMIT else []
    if per_message:  # one embedding per message; their mean stands for the exchange
        vecs = await providers.embedder.embed([m.text for m in per_message])
        mean = vecs.mean(axis=0)
        vectors = np.vstack([mean / (float(np.linalg.norm(mean)) or 1.0), vecs]).astype(np.float32)
    else:
        vectors = await providers.embedder.embed([query])
    names = query_hints(query).names[:MAX_NAMES]
    async with db.connect(generic_plans=True) as conn:
        nearest, named, rows = await SearchRepository(conn).add_candidates(
            project_id, list(dict.fromkeys(scopes)), vectors, names, k=CANDIDATES, k_names=NAME_CANDIDATES
        )
    shown = [mid for mid, _ in nearest[0]]
    for each in nearest[1:]:
        shown += [mid for mid, _ in each[:PER_MESSAGE]]
    shown = list(dict.fromkeys([*shown, *named]))
    radii: dict[int, tuple[NDArray[np.float32], float]] = {}
    for m, v, each in zip(per_message, vectors[1:], nearest[1:], strict=True):
        radii[m.index] = (v, coverage.radius([sim for _, sim in each[:PER_MESSAGE]], PER_MESSAGE))
    return _Loaded(
        [
            (Candidate(ref=i, id=r.id, text=r.memory, created_at=r.created_at, immutable=r.immutable), r.provenance)
            for i, r in enumerate((rows[mid] for mid in shown), start=1)
        ],
        radii,
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
) -> tuple[list[Decision], dict[str, Any]]:
    """The LLM decides; returns the decisions and the embedding of each new text."""
    prompt = extract.build_prompt(req)
    if images:  # a vision model sees the images next to the conversation
        prompt[-1] = {**prompt[-1], "content": [{"type": "text", "text": prompt[-1]["content"]}, *images]}
    first = await llm.generate(prompt, extract.reply_model(req), context=extract.reply_context(req))
    report.add_usage(first.usage)
    reply = first.value
    decisions = reconcile.decide(req, reply)
    vectors = await _embed(providers, decisions)
    followup = await _followup_request(db, project_id, req, reply, decisions, vectors, scopes, radii)
    if followup is not None:
        report.second_call = True
        second = await llm.generate(
            extract.build_followup_prompt(followup, extract.facts_without_ref(reply)),
            extract.ExtractionReply,
            context=extract.reply_context(followup),
        )
        report.add_usage(second.usage)
        decisions = reconcile.decide(req, reply, (followup, second.value))
        vectors = await _embed(providers, decisions)
    return decisions, vectors


async def _embed(providers: Providers, decisions: list[Decision]) -> dict[str, Any]:
    """The new memory texts' embeddings, and (enable_graph) the entity names', in one request."""
    names = [n for d in decisions if d.op != "DELETE" for r in d.relations for n in (r.source, r.target)]
    texts = list(dict.fromkeys([*(d.text for d in decisions if d.op in ("ADD", "UPDATE")), *names]))
    if not texts:
        return {}
    return dict(zip(texts, await providers.embedder.embed(texts), strict=True))


async def _followup_request(
    db: Database,
    project_id: uuid.UUID,
    req: ExtractionRequest,
    reply: extract.ExtractionReply,
    decisions: list[Decision],
    vectors: dict[str, Any],
    scopes: dict[Speaker, Scope],
    radii: dict[int, tuple[NDArray[np.float32], float]],
) -> ExtractionRequest | None:
    """The second call's request when a new fact's nearest stored memory was not shown; else None.

    Facts whose source message's shown neighbourhood provably holds every memory that close
    (pipeline.coverage) need no lookup."""
    adds = [
        d
        for d in decisions
        if d.op == "ADD"
        and not any(
            coverage.covered(vectors[d.text], *radii[i], SECOND_CALL_SIMILARITY) for i in d.sources if i in radii
        )
    ]
    if not adds or not extract.facts_without_ref(reply):
        return None
    shown = {c.id for c in req.candidates}
    async with db.connect() as conn:
        repo = SearchRepository(conn)
        near = await repo.nearest_each(
            project_id, list(dict.fromkeys(scopes.values())), _stack([vectors[d.text] for d in adds]), k=3
        )
        missing = list(
            dict.fromkeys(
                mid for hits in near for mid, sim in hits if sim >= SECOND_CALL_SIMILARITY and mid not in shown
            )
        )
        if not missing:
            return None
        rows = await MemoryRepository(conn).get_many(project_id, missing)
    extra = [
        Candidate(ref=i, id=r.id, text=r.memory, created_at=r.created_at, immutable=r.immutable)
        for i, r in enumerate(rows, start=len(req.candidates) + 1)
    ]
    return req.model_copy(update={"candidates": extra})


def _stack(vectors: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    return np.stack(vectors).astype(np.float32)


def _changes(
    inp: AddInput,
    scopes: dict[Speaker, Scope],
    decisions: list[Decision],
    vectors: dict[str, Any],
    provenance: dict[uuid.UUID, Any],
    event_id: uuid.UUID,
) -> ChangeSet:
    changes = ChangeSet()
    for i, d in enumerate(decisions):
        source = {"event_id": str(event_id), "message_indices": sorted(d.sources)}
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
                )
            )
        elif d.op == "DELETE" and d.target_id is not None:
            changes.removals.append(MemoryRemoval(memory_id=d.target_id, replaced_by_index=_superseder(d, decisions)))
        elif d.op == "NOOP":
            changes.noops.append(Noop(memory_id=d.target_id, text=d.text, index=i))
    return changes


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
    conn: Connection, project_id: uuid.UUID, decisions: list[Decision], shown: dict[uuid.UUID, Candidate]
) -> None:
    """Lock the memories the model decided on; any that changed or vanished since it saw them -> _Stale."""
    targets = [d.target_id for d in decisions if d.op in ("UPDATE", "DELETE") and d.target_id is not None]
    if not targets:
        return
    rows = {r.id: r for r in await MemoryRepository(conn).get_for_update(project_id, targets)}
    for mid in targets:
        row = rows.get(mid)
        seen = shown.get(mid)
        if row is None or (seen is not None and row.memory != seen.text) or row.immutable:
            raise _Stale(str(mid))


def _defaults(inp: AddInput) -> AddDefaults:
    return AddDefaults(
        metadata=inp.metadata, immutable=inp.immutable, expiration_date=inp.expiration_date, created_at=inp.timestamp
    )
