"""infer=true: a conversation becomes ADD / UPDATE / DELETE / NOOP memory events, in one LLM call for a chat turn.

An `InferredAdd` runs one add (a request processed now, or a job), or several queued adds of one scope at once
(coalesced: one prompt holds their messages in acceptance order, numbered across all of them). No transaction
is open across an embedding or LLM call:

1. read: each add's messages as the model reads them (documents, images), once;
2. load: the scope's memories nearest to each add's messages (one hybrid search per add, united), the graph
   context with enable_graph, and the request the model answers;
3. think: ONE call extracts the facts and decides each against those memories (shown under small integer refs,
   never UUIDs); the new texts are embedded in one batch; a second call only for new facts whose nearest
   stored memory was not in the prompt (at most one, counted); each decision goes to the add whose message
   completed it (`pipeline.changes`);
4. apply: one transaction through the single write path: every add's changes, its relations and its event's
   outcome, in acceptance order. If a memory the model decided on changed meanwhile (a concurrent add), the
   run is loaded and thought again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain.add import AddInput, ignored_notes
from memserver.domain.changes import AddDefaults, ChangeSet, Outcome
from memserver.domain.scope import Scope
from memserver.errors import NotConfigured, ServiceUnavailable
from memserver.pipeline import changes as changes_of
from memserver.pipeline import reconcile
from memserver.pipeline.categories import catalogue
from memserver.pipeline.prompts import extract
from memserver.pipeline.prompts import followup as followup_prompt
from memserver.pipeline.types import AddGroup, Candidate, Decision, ExtractionRequest, InMessage, Speaker, speakers_for
from memserver.providers.llm.base import LLM
from memserver.providers.registry import Providers
from memserver.services import attachments, project_settings, usage
from memserver.services import candidate_lookup as lookup
from memserver.services import graph as graph_service
from memserver.services.graph import GraphPlan
from memserver.services.inference.freshness import Stale, check_fresh
from memserver.services.inference.report import InferenceReport, decisions_out, split
from memserver.services.project_settings import ProjectSettings
from memserver.storage.db import Connection, Database, retry_transient
from memserver.storage.repositories.memory_writes import MemoryWriter

log = logging.getLogger(__name__)

NO_LLM = (
    "infer=true needs an LLM, and no LLM is configured on this memserver. Configure any OpenAI-compatible "
    "chat endpoint with MEMSERVER_LLM__BASE_URL (and MEMSERVER_LLM__API_KEY, MEMSERVER_LLM__MODEL), e.g. "
    "OpenAI, Ollama, vLLM, LM Studio or a llama.cpp server; or send infer=false to store the messages verbatim."
)
MAX_THINKS = 3  # a concurrent add changed a decided-on memory: think again, at most this often

Vectors = dict[str, NDArray[np.float32]]
# Records the add's event (its outcomes and report) inside the apply transaction.
Finish = Callable[[Connection, list[Outcome], InferenceReport], Awaitable[None]]


def require_llm(providers: Providers) -> LLM:
    if providers.llm is None:
        raise NotConfigured(NO_LLM)
    return providers.llm


@dataclass
class AddInRun:
    """One add of a run: its request and event, its messages as the model reads them, and its report."""

    inp: AddInput
    event_id: uuid.UUID
    finish: Finish
    messages: list[InMessage] = field(default_factory=list)  # numbered across the run (`read`)
    images: list[dict[str, Any]] = field(default_factory=list)  # image parts for a vision model
    notes: list[str] = field(default_factory=list)  # parameters it sent without effect; what reading skipped or cut
    observed_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # observation date, timestamp, or now
    report: InferenceReport = field(default_factory=InferenceReport)  # set by `apply`

    @property
    def first_message(self) -> int:
        return self.messages[0].index if self.messages else 0

    def weight(self) -> int:
        """Its share of a shared call: the characters of its messages."""
        return sum(len(m.text) for m in self.messages)


@dataclass(frozen=True)
class Context:
    """What `load` found: the memories to show, the graph context (enable_graph), the request to answer."""

    loaded: lookup.Loaded
    plan: GraphPlan | None
    req: ExtractionRequest


@dataclass(frozen=True)
class Decided:
    """What `think` decided: the decisions, the new texts' embeddings, every memory shown (first prompt and
    follow-up) with its provenance, and each add's share of the decisions with the changes it writes."""

    decisions: list[Decision]
    vectors: Vectors
    shown: dict[uuid.UUID, Candidate]
    shares: list[changes_of.Share]
    changes: list[ChangeSet]


@dataclass
class InferredAdd:
    """The run: 1..n adds of one project and scope (the same user, agent, app and run ids), in acceptance
    order, with the same prompt-shaping fields (instructions, categories, enable_graph)."""

    db: Database
    providers: Providers
    llm: LLM
    project_id: uuid.UUID
    adds: list[AddInRun]
    settings: ProjectSettings | None = None  # the project's, read by the first `load`
    report: InferenceReport = field(default_factory=InferenceReport)  # the run's calls, split over the adds

    @property
    def inp(self) -> AddInput:
        """The request fields every add of the run shares (scope and prompt-shaping fields): the first add's."""
        return self.adds[0].inp

    @property
    def scopes(self) -> dict[Speaker, Scope]:
        speakers = speakers_for(user_id=self.inp.user_id, agent_id=self.inp.agent_id)
        return {s: _scope_of(self.inp, s) for s in speakers}

    async def run(self) -> list[list[Outcome]]:
        """Read, then load, think and apply (again when a decided-on memory changed meanwhile); each add's
        outcomes, in the adds' order. Each add's report is on it (`AddInRun.report`)."""
        await self.read()
        for _ in range(MAX_THINKS):
            ctx = await self.load()
            decided = await self.think(ctx)
            try:
                return await self.apply(ctx, decided)
            except Stale:
                log.info("add %s: a memory changed while the model was deciding; thinking again", self.adds[0].event_id)
        raise ServiceUnavailable("the memories of this scope kept changing while the add was processed; retry the add")

    def spent(self) -> list[dict[str, int]]:
        """Each add's share of what the run's LLM calls cost so far (its event records it also when the run
        fails): the whole of it for a run of one add."""
        reports = split(
            self.report, [[] for _ in self.adds], [a.weight() for a in self.adds], [a.event_id for a in self.adds]
        )
        return [r.spent() for r in reports]

    async def read(self) -> None:
        """Each add's messages (document text, image parts for a vision model), numbered across the run."""
        first = 0
        for add in self.adds:
            add.notes[:] = ignored_notes(add.inp.ignored)
            messages, add.images = await attachments.read_messages(
                add.inp.messages, reader=self.providers.documents, vision=self.llm.vision, notes=add.notes
            )
            add.messages = [m.model_copy(update={"index": m.index + first}) if first else m for m in messages]
            add.observed_at = add.inp.observation(datetime.now(UTC))
            first += len(messages)

    async def load(self) -> Context:
        """The memories each add's messages bring up (united), the graph context, the request."""
        loads = [lookup.load(self.db, self.providers, self.project_id, self.scopes, a.messages) for a in self.adds]
        if self.settings is None:  # read while the messages are embedded and the candidates loaded
            settings, loaded = await asyncio.gather(
                project_settings.project_settings(self.db, self.project_id), asyncio.gather(*loads)
            )
            # The project's instructions, categories and prompts apply where the request gave none.
            for add in self.adds:
                add.inp = project_settings.with_project_defaults(settings, add.inp)
            self.settings = settings
        else:  # a concurrent add changed a memory the model decided on: load again
            settings, loaded = self.settings, await asyncio.gather(*loads)
        found = lookup.unite(list(loaded))
        self.report.thinks += 1
        self.report.candidates = len(found.candidates)
        candidates = [c for c, _ in found.candidates]
        messages = [m for a in self.adds for m in a.messages]
        plan = (
            await graph_service.load_context(self.db, self.project_id, self.inp, self.scopes, candidates, messages)
            if self.inp.enable_graph  # the request's, else the project's
            else None
        )
        inp = self.inp
        req = ExtractionRequest(
            groups=[AddGroup(observed_at=a.observed_at, messages=a.messages) for a in self.adds],
            candidates=candidates,
            speakers=frozenset(self.scopes),
            includes=inp.includes,
            excludes=inp.excludes,
            custom_instructions=inp.custom_instructions,
            agent_custom_instructions=inp.agent_custom_instructions,
            categories=catalogue(inp.custom_categories),
            graph=plan.context if plan is not None else None,
            in_english=settings.multilingual is False,  # explicitly false; unset keeps the input language
        )
        return Context(loaded=found, plan=plan, req=req)

    async def think(self, ctx: Context) -> Decided:
        """The model decides (one call; a second only for new facts whose nearest memory it was not shown);
        the new texts are embedded; each decision goes to its add."""
        decisions, vectors, later = await self._decide(ctx)
        if ctx.plan is not None:
            await graph_service.plan_writes(
                self.providers, ctx.plan, decisions, self.scopes, vectors, notes=self.report.notes
            )
        seen = [*ctx.loaded.candidates, *later]  # the first prompt's memories and the follow-up's, alike
        provenance = {c.id: p for c, p in seen}
        add_of = {m.index: k for k, a in enumerate(self.adds) for m in a.messages}
        owner = changes_of.attribute(decisions, add_of, len(self.adds))
        shares = changes_of.shares(
            decisions,
            owner,
            [a.event_id for a in self.adds],
            [a.first_message for a in self.adds],
            [(a.observed_at, a.inp.zone) for a in self.adds],
        )
        return Decided(
            decisions=decisions,
            vectors=vectors,
            shown={c.id: c for c, _ in seen},
            shares=shares,
            changes=[changes_of.change_set(s, decisions, self.scopes, vectors, provenance) for s in shares],
        )

    async def apply(self, ctx: Context, d: Decided) -> list[list[Outcome]]:
        """The write, one transaction (run again after a deadlock): the decided memories are still as the model
        saw them (else Stale); then, add by add in acceptance order, its changes, its relations (enable_graph)
        and its event's outcome commit together."""
        reports = split(
            self.report, [a.notes for a in self.adds], [a.weight() for a in self.adds], [a.event_id for a in self.adds]
        )
        for add, report in zip(self.adds, reports, strict=True):
            add.report = report

        async def apply_once() -> list[list[Outcome]]:
            async with self.db.transaction() as conn:
                await check_fresh(conn, self.project_id, d.decisions, d.shown, self.scopes)
                out = []
                for k, (add, changes) in enumerate(zip(self.adds, d.changes, strict=True)):
                    outcomes = await MemoryWriter(conn).apply(
                        self.project_id, changes, _defaults(add.inp), event_id=add.event_id
                    )
                    memories = changes_of.memory_of(d.shares[k], d.decisions, outcomes)
                    add.report.decisions = decisions_out(d.decisions, memories, add.first_message)
                    if ctx.plan is not None:  # the relations commit with the memories they came from
                        await self._write_graph(conn, ctx.plan, d, k, memories)
                    await add.finish(conn, outcomes, add.report)
                    out.append(outcomes)
                return out

        # a deadlock or serialization failure with a concurrent add is retried (bounded)
        return await retry_transient(apply_once)

    async def _decide(self, ctx: Context) -> tuple[list[Decision], Vectors, list[lookup.Shown]]:
        """The LLM decides; returns the decisions, the embedding of each new text, and the memories the
        follow-up call showed (the first prompt's are the request's)."""
        req, report = ctx.req, self.report
        prompt = extract.build(req)
        images = [i for a in self.adds for i in a.images]
        if images:  # a vision model sees the images next to the conversation
            prompt[-1] = {**prompt[-1], "content": [{"type": "text", "text": prompt[-1]["content"]}, *images]}
        first = await usage.spend(  # a failed call counts too
            report.add_usage,
            self.llm.generate(
                prompt, extract.reply_model(req), context=extract.context(req), budget=extract.budget(req)
            ),
        )
        report.note(first.notes)  # what the reply's parse dropped or changed
        reply = first.value
        notes: list[str] = []
        decisions = reconcile.decide(req, reply, notes=notes)
        vectors = await _embed(self.providers, decisions)
        found = await lookup.followup(
            self.db, self.project_id, req, reply, decisions, vectors, self.scopes, ctx.loaded.radii
        )
        if found is None:
            report.note(notes)
            return decisions, vectors, []
        followup, later = found
        report.second_call = True
        second = await usage.spend(
            report.add_usage,
            self.llm.generate(
                followup_prompt.build(followup, followup_prompt.facts_without_ref(reply)),
                followup_prompt.Reply,
                context=followup_prompt.context(followup),
                budget=extract.budget(followup),
            ),
        )
        report.note(second.notes)
        notes.clear()  # decided again, with the follow-up's answers
        decisions = reconcile.decide(req, reply, (followup, second.value), notes=notes)
        report.note(notes)
        return decisions, await _embed(self.providers, decisions), later

    async def _write_graph(
        self, conn: Connection, plan: GraphPlan, d: Decided, k: int, memories: dict[int, uuid.UUID | None]
    ) -> None:
        """The relations of add k's decisions, linked to the memories its write produced (`memories`)."""
        add, share = self.adds[k], d.shares[k]
        mine = set(share.decisions)
        picked = [(r, i) for r, i in zip(plan.drafts, plan.draft_decisions, strict=True) if i in mine]
        own = replace(plan, drafts=[r for r, _ in picked], draft_decisions=[i for _, i in picked])
        add.report.graph = await graph_service.write(
            conn,
            self.project_id,
            own,
            memories,
            event_id=add.event_id,
            observed_at=add.observed_at,
        )
        if self.providers.graph_mirror is not None and add.report.graph.relation_ids:
            speakers = dict.fromkeys(d.decisions[i].speaker for i in share.decisions)
            await graph_service.enqueue_sync(conn, self.project_id, [_scope_of(add.inp, s) for s in speakers])


def _scope_of(inp: AddInput, speaker: Speaker) -> Scope:
    """Attribution: with both ids, user facts go under user_id only and assistant facts under agent_id only."""
    both = bool(inp.user_id and inp.agent_id)
    return Scope(
        user_id=inp.user_id if not (both and speaker == "assistant") else None,
        agent_id=inp.agent_id if not (both and speaker == "user") else None,
        app_id=inp.app_id,
        run_id=inp.run_id,
    )


async def _embed(providers: Providers, decisions: list[Decision]) -> Vectors:
    """The new memory texts' embeddings, and (enable_graph) the entity names', in one request."""
    names = [n for d in decisions if d.op != "DELETE" for r in d.relations for n in (r.source, r.target)]
    texts = list(dict.fromkeys([*(d.text for d in decisions if d.op in ("ADD", "UPDATE")), *names]))
    if not texts:
        return {}
    return dict(zip(texts, await providers.embedder.embed(texts), strict=True))


def _defaults(inp: AddInput) -> AddDefaults:
    return AddDefaults(
        metadata=inp.metadata, immutable=inp.immutable, expiration_date=inp.expiration_date, created_at=inp.timestamp
    )
