"""Search use case: understand the query, embed it, gather evidence in SQL, rank, read the winners.

Dense-only search is one statement. Hybrid search is two: the evidence for every memory in the
scope (or the candidates of a large one), ranked here (`pipeline.ranking`), then the winners' rows.
Graph-aware search (`graph_weight` > 0) adds one before them when the query names something and the
filter names an entity scope: the graph scores of the memories linked to the entities the query names.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from memserver.domain.filters import Node, entity_equalities
from memserver.domain.principal import Principal
from memserver.domain.rows.memories import DenseHitRow, MemoryRow
from memserver.pipeline import decay as decay_rule
from memserver.pipeline import query as query_understanding
from memserver.pipeline import ranking, temporal
from memserver.pipeline.query import QueryHints
from memserver.pipeline.ranking import HYBRID, KEYWORD_ONLY, Weights
from memserver.pipeline.temporal import TemporalQuery
from memserver.providers.registry import Providers
from memserver.providers.rerank.base import Spent
from memserver.services import graph as graph_service
from memserver.services import rerank as reranking
from memserver.services import usage
from memserver.services.project_settings import project_settings
from memserver.services.usage import UsageMeter
from memserver.storage.db import Connection, Database
from memserver.storage.filters import compile_filter
from memserver.storage.repositories import search as search_sql
from memserver.storage.repositories.graph_reads import GraphReads
from memserver.storage.repositories.memory_reads import MemoryReadRepository
from memserver.storage.repositories.memory_states import MemoryStates, StateView, state_at
from memserver.storage.repositories.search import SearchRepository

assert ranking.MAX_TERMS == search_sql.MAX_TERMS  # the terms bitmask: written by SQL, read by ranking


# Ranking an evidence set this large costs milliseconds of numpy: run it on a worker thread so other
# requests keep being served meanwhile. Smaller sets rank faster than a thread hop.
OFFLOAD_ROWS = 2_000
# A scope larger than the exact-scan limit takes full-text candidates only from words in less than this share
# of all memories (the planner's statistics, re-read every COMMON_TTL_S): at 1M memories a word in 6.5% of
# them cost ~12 ms of posting list for 250 arbitrary candidates (project-wide hybrid p50/p95 190/265 ms ->
# 20/28 ms in bench.scale at 1M; scopes under the exact-scan limit never read candidates this way).
COMMON_WORD_SHARE = 0.01
COMMON_TTL_S = 600.0
_common: tuple[float, list[str]] = (0.0, [])  # (valid until, words)
# Graph-aware search: a relation one step further from a named entity counts this much less.
GRAPH_HOP_DECAY = 0.5


@dataclass
class SearchInput:
    query: str
    node: Node
    top_k: int = 10
    threshold: float = 0.0
    show_expired: bool = False
    rerank: bool = False
    keyword_search: bool = False
    retrieval: str = "hybrid"  # hybrid | semantic | keyword
    as_of: datetime | None = None  # search the memories as they stood then (a past moment; else today's)
    reference: datetime | None = None  # "now" for the times the query names (aware); None: the server's clock
    zone: tzinfo | None = None  # the query's time zone (`timezone`); None: the reference's own, else UTC

    def now(self) -> datetime:
        """The search's "now": `reference_date`, else the `as_of` moment it reads memory at, else the clock."""
        return (
            self.reference
            or (self.as_of.astimezone(self.zone or UTC) if self.as_of else None)
            or datetime.now(self.zone or UTC)
        )


@dataclass
class Hit:
    row: MemoryRow
    score: float
    breakdown: dict[str, float] = field(default_factory=dict)
    reranker: str | None = None  # rerank=true: what ordered the hit ("none": the reranker failed)
    rerank_error: str | None = None  # why the reranker failed
    reasons: dict[str, str] | None = None  # why a part of the score is what it is (time queries: "temporal")


@dataclass
class SearchConfig:
    exact_scan_limit: int = 20_000
    neighbour_gap_s: float = 3600.0
    graph_weight: float = 0.0  # graph-aware search off unless configured (internal searches leave it off)
    graph_hops: int = 2
    graph_fanout: int = 20
    rerank: reranking.RerankConfig = field(default_factory=reranking.RerankConfig)  # what rerank=true does


def _weights(req: SearchInput) -> Weights:
    w = KEYWORD_ONLY if req.retrieval == "keyword" else HYBRID
    if req.keyword_search and req.retrieval == "hybrid":
        # keyword_search=true: exact word matches count twice as much
        w = replace(w, bm25=2 * w.bm25, bm25_context=2 * w.bm25_context)
    return w


async def search(
    db: Database,
    providers: Providers,
    principal: Principal,
    req: SearchInput,
    config: SearchConfig | None = None,
    *,
    meter: UsageMeter | None = None,
) -> list[Hit]:
    """A user's search (counted by `meter` for the project's usage: a dict increment, no I/O)."""
    decay = (await project_settings(db, principal.project_id, cached=True)).decay
    pid = principal.project_id
    # as_of reads memory as it was: no recency weighting from today's clock, and nothing counts as a read
    spent = (lambda used: meter.spent(pid, used)) if meter is not None else None  # a listwise LLM ranking
    hits = await search_project(db, providers, pid, req, config, decay=decay and req.as_of is None, spent=spent)
    if meter is not None:
        meter.count(principal.project_id, usage.SEARCHES)
    return hits


async def search_project(
    db: Database,
    providers: Providers,
    project_id: uuid.UUID,
    req: SearchInput,
    config: SearchConfig | None = None,
    *,
    decay: bool = False,
    spent: Spent | None = None,
) -> list[Hit]:
    """Search one project's memories (the caller has checked who may); `spent` is told what a listwise LLM
    ranking cost (the project's usage).

    decay: the project's `decay` setting (a user's search); scores are weighted by recency and recent
    reads, and the hits returned count as reads. Internal searches (inference candidates) leave it off.
    """
    config = config or SearchConfig()
    ref = req.now()
    qh = QueryHints()  # what the query names (hybrid retrieval reads it)
    vector = (await providers.embedder.embed([req.query]))[0]
    where = compile_filter(req.node)
    pool = reranking.pool(config.rerank, req.top_k) if req.rerank else req.top_k
    if decay:  # decay reorders: rank it over more than the winners
        pool = max(pool, 3 * req.top_k, 30)
    state = _state_then(project_id, req)
    show_expired = req.show_expired or state is not None  # at a past moment, the state evaluates expiry then
    # (a statement over the past is planned for its instant: how many changes since then decides the plan)
    async with db.connect(generic_plans=state is None) as conn:
        repo = SearchRepository(conn)
        if req.retrieval == "semantic":
            rows = await repo.dense(
                project_id,
                where,
                vector,
                limit=pool,
                exact_limit=config.exact_scan_limit,
                show_expired=show_expired,
                state=state,
            )
            hits = [_dense_hit(r) for r in rows]
        else:
            qh = query_understanding.hints(req.query, ref)
            graph = await _graph_scores(conn, project_id, req, qh.names, config)
            ids, evidence, nterms = await repo.hybrid_evidence(
                project_id,
                where,
                vector,
                req.query,
                qh.names,
                exact_limit=config.exact_scan_limit,
                show_expired=show_expired,
                common=await _common_words(repo),
                state=state,
                events=_hull(qh) if qh.ranges else None,
            )
            rank = functools.partial(
                ranking.rank,
                ranking.Evidence.from_columns(evidence, nterms, [graph.get(i, 0.0) for i in ids] if graph else None),
                periods=[(a.timestamp(), z.timestamp()) for a, z in qh.periods],
                months=qh.months,
                weights=replace(_weights(req), graph=config.graph_weight),
                gap_s=config.neighbour_gap_s,
                limit=pool,
                events=TemporalQuery.of(qh.ranges, ref) if qh.ranges else None,
            )
            scored = await asyncio.to_thread(rank) if len(ids) > OFFLOAD_ROWS else rank()
            scored = [s for s in scored if s.total > 0]
            winners = [ids[s.index] for s in scored]
            if state is None:
                by_id = await repo.rows(project_id, winners)
            else:
                by_id = await MemoryStates(conn).rows(project_id, winners, state.at)
            hits = [_hybrid_hit(by_id[ids[s.index]], s, bool(graph)) for s in scored if ids[s.index] in by_id]
    if decay:
        hits = await _decay(db, project_id, hits, ref)
    # The threshold applies to the hybrid score, before reranking: a reranker never brings back a hit under it.
    hits = [h for h in hits if h.score >= req.threshold and h.score > 0]
    if req.rerank:
        hits = await _rerank(providers, config.rerank, req, hits, spent)
    out = hits[: req.top_k]
    if qh.ranges:
        _explain_time(out, qh, ref)
    if decay:
        async with db.connect() as conn:
            await MemoryReadRepository(conn).record(project_id, [h.row.id for h in out])
    return out


def _state_then(project_id: uuid.UUID, req: SearchInput) -> StateView | None:
    """`as_of` in the past: the memories as they stood then, with their vectors and words (`memory_states`)."""
    if req.as_of is None or req.as_of >= datetime.now(UTC):
        return None
    return state_at(project_id, req.node, req.as_of, show_expired=req.show_expired, vectors=True)


async def _common_words(repo: SearchRepository) -> list[str]:
    global _common
    now = time.monotonic()
    if now >= _common[0]:
        _common = (now + COMMON_TTL_S, await repo.common_words(COMMON_WORD_SHARE))
    return _common[1]


def _hull(h: QueryHints) -> tuple[datetime, datetime]:
    """The span of every range the query names (a month of any year has none: an empty span)."""
    concrete = [r for r in h.ranges if r.month is None]
    if not concrete:
        return h.ranges[0].start, h.ranges[0].start
    return min(r.start for r in concrete), max(r.end for r in concrete)


def _explain_time(hits: list[Hit], h: QueryHints, ref: datetime) -> None:
    """The words behind each returned hit's temporal score (`score_reasons`), for the few hits returned only."""
    zone = ref.tzinfo or UTC
    for hit in hits:
        row = hit.row
        event = (row.event_start, row.event_end) if row.event_start and row.event_end else None
        hit.reasons = {"temporal": temporal.explain(h.ranges, h.periods, row.created_at, event, zone, ref)}


async def _decay(db: Database, project_id: Any, hits: list[Hit], now: datetime) -> list[Hit]:
    """The project's `decay` setting: scores times a factor from recency and recent reads (0.3x-1.5x, capped at 1)."""
    async with db.connect() as conn:
        reads = await MemoryReadRepository(conn).stats(project_id, [h.row.id for h in hits])
    for h in hits:
        count, last = reads.get(h.row.id, (0, None))
        f = decay_rule.factor(h.row.updated_at, now, count, last)
        h.score = decay_rule.decayed(h.score, f)
        h.breakdown["decay"] = round(f, 6)
    return sorted(hits, key=lambda h: -h.score)


def _dense_hit(r: DenseHitRow) -> Hit:
    score = round(max(0.0, min(1.0, float(r.similarity))), 6)
    return Hit(row=r, score=score, breakdown={"semantic": score, "bm25": 0.0, "entity": 0.0})


async def _graph_scores(
    conn: Connection, project_id: uuid.UUID, req: SearchInput, names: list[str], config: SearchConfig
) -> dict[uuid.UUID, float]:
    """Graph-aware search: memory id -> graph score, or {} (no query at all) when the feature is off, the
    query names nothing capitalised, or the filter names no entity scope (graph reads never read them all)."""
    if config.graph_weight <= 0 or req.retrieval != "hybrid" or not names:
        return {}
    ids = entity_equalities(req.node)
    if not ids:
        return {}
    return await GraphReads(conn).memory_scores(
        project_id,
        ids,
        graph_service.query_grams(req.query),
        graph_service.written_grams(req.query),
        hops=config.graph_hops,
        fanout=config.graph_fanout,
        hop_decay=GRAPH_HOP_DECAY,
    )


def _hybrid_hit(row: MemoryRow, s: ranking.Scored, graph: bool) -> Hit:
    breakdown = {
        "semantic": s.semantic,
        "bm25": s.keyword,
        "entity": s.entity,
        "temporal": s.temporal,
        "context": s.context,
    }
    if graph:  # the query named graph entities: every hit says how much the graph gave it (often 0)
        breakdown["graph"] = s.graph
    # the score is compared with thresholds exactly as reported
    return Hit(row=row, score=round(math.tanh(s.total), 6), breakdown=breakdown)


async def _rerank(
    providers: Providers,
    config: reranking.RerankConfig,
    req: SearchInput,
    hits: list[Hit],
    spent: Spent | None = None,
) -> list[Hit]:
    """rerank=true: the hits reordered as `services/rerank.py` decides, each labelled with what ordered it."""
    outcome = await reranking.order(
        providers,
        config,
        req.query,
        [h.score for h in hits],
        [str(h.row.memory) for h in hits],
        req.top_k,
        spent=spent,
    )
    for i, h in enumerate(hits):
        h.reranker, h.rerank_error = outcome.label, outcome.error
        if outcome.key is not None and i in outcome.ordering.values:
            h.breakdown[outcome.key] = outcome.ordering.values[i]
    return [hits[i] for i in outcome.ordering.order]
