"""Graph memory use cases: what an inferred add shows and writes, and the graph reads of list, search and the
entity timeline. Postgres (`storage.repositories.graph_writes`) is the store of record, written in the add's own
transaction; a configured Neo4j is a mirror fed by GRAPH_SYNC jobs (`sync_job`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from memserver.domain import limits
from memserver.domain.add import AddInput
from memserver.domain.filters import Node, entity_equalities
from memserver.domain.jobs import JobKind
from memserver.domain.principal import Principal
from memserver.domain.relations import GraphChanges, RelationDraft, RelationRecord
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.errors import NotFound
from memserver.pipeline.relation_extract import MAX_SHOWN_RELATIONS, GraphContext, ShownRelation, name_key, resolve
from memserver.pipeline.types import Candidate, Decision, InMessage, Speaker
from memserver.providers.registry import Providers
from memserver.services import jobs
from memserver.storage.db import Connection, Database
from memserver.storage.repositories.graph_writes import PostgresGraphStore
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository

SEARCH_MIN_SIMILARITY = 0.6  # a query "names" an entity by meaning at this cosine (all-MiniLM-L6-v2)
MAX_GRAM = 4  # longest entity name matched word for word in a query, in words


# ----------------------------------------------------------------------------------------------
# an inferred add: load (context), think (drafts + name embeddings), apply (write)
# ----------------------------------------------------------------------------------------------
@dataclass
class GraphPlan:
    """The graph side of one add: the context shown to the model, then what to write."""

    context: GraphContext
    ref_ids: dict[int, uuid.UUID] = field(default_factory=dict)  # shown relation ref -> relation id
    ref_scopes: dict[int, Scope] = field(default_factory=dict)  # shown relation ref -> its scope
    drafts: list[RelationDraft] = field(default_factory=list)
    draft_decisions: list[int] = field(default_factory=list)  # the decision (index) each draft came from
    vectors: dict[str, Any] = field(default_factory=dict)  # entity name -> unit embedding


async def load_context(
    db: Database,
    project_id: uuid.UUID,
    inp: AddInput,
    scopes: Mapping[Speaker, Scope],
    candidates: Sequence[Candidate],
    messages: Sequence[InMessage],
) -> GraphPlan:
    """The current relations the model may end: those of the memories shown to it and of the entities the
    messages name (at most MAX_SHOWN_RELATIONS, newest first)."""
    said = query_grams(" ".join(m.text for m in messages)[:4000])
    names = [inp.user_id, inp.agent_id]  # the speakers are entities of their own scope
    grams = [*said, *(name_key(n) for n in names if n)]
    async with db.connect() as conn:
        records = await PostgresGraphStore(conn).context(
            project_id,
            list(dict.fromkeys(scopes.values())),
            [c.id for c in candidates],
            grams,
            limit=MAX_SHOWN_RELATIONS,
        )
    shown = [
        ShownRelation(
            ref=i,
            id=r.id,
            source=r.triple.source,
            relationship=r.triple.relationship,
            target=r.triple.target,
            valid_at=r.valid_at,
        )
        for i, r in enumerate(records, start=1)
    ]
    ctx = GraphContext(
        user_name=inp.user_id if "user" in scopes else None,
        agent_name=inp.agent_id if "assistant" in scopes else None,
        relations=shown,
    )
    return GraphPlan(
        context=ctx,
        ref_ids={s.ref: s.id for s in shown},
        ref_scopes={s.ref: r.scope for s, r in zip(shown, records, strict=True)},
    )


async def plan_writes(
    providers: Providers,
    plan: GraphPlan,
    decisions: Sequence[Decision],
    scopes: Mapping[Speaker, Scope],
    vectors: Mapping[str, Any],
    *,
    notes: list[str] | None = None,
) -> None:
    """Turn the decisions' relations into drafts; entity names take their embedding from `vectors` (embedded
    with the memory texts), any other is embedded now.

    A relation only ends relations of its own speaker's scope (a user's words never retire the agent's
    relations, which every user of the agent shares); a `replaces` of another scope's is dropped with a note."""
    plan.drafts, plan.draft_decisions = [], []
    for i, d in enumerate(decisions):
        if d.op == "DELETE":
            continue
        for r in d.relations:
            foreign = [x for x in r.replaces if x in plan.ref_scopes and plan.ref_scopes[x] != scopes[d.speaker]]
            note = f"a {d.speaker} relation cannot end relations of another scope (rel {foreign})"
            if foreign and notes is not None and note not in notes:
                notes.append(note)
            plan.drafts.append(
                RelationDraft(
                    scope=scopes[d.speaker],
                    source=r.source,
                    source_type=r.source_type,
                    relationship=r.relationship,
                    target=r.target,
                    target_type=r.target_type,
                    valid_at=r.valid_from,
                    invalid_at=r.valid_to,
                    memory_id=None,  # known after the memories are written (decision index below)
                    fact=d.text,
                    replaces=tuple(plan.ref_ids[x] for x in r.replaces if x in plan.ref_ids and x not in foreign),
                )
            )
            plan.draft_decisions.append(i)
    names = list(dict.fromkeys(n for d in plan.drafts for n in (d.source, d.target)))
    missing = [n for n in names if n not in vectors]
    fresh = dict(zip(missing, await providers.embedder.embed(missing), strict=True)) if missing else {}
    plan.vectors = {n: vectors[n] if n in vectors else fresh[n] for n in names}


async def write(
    conn: Connection,
    project_id: uuid.UUID,
    plan: GraphPlan,
    memory_of: Mapping[int, uuid.UUID | None],
    *,
    event_id: uuid.UUID,
    observed_at: datetime,
) -> GraphChanges:
    """Write the plan in the add's transaction; `memory_of[i]` is the memory decision i wrote or kept."""
    drafts = [replace(d, memory_id=memory_of.get(i)) for d, i in zip(plan.drafts, plan.draft_decisions, strict=True)]
    return await PostgresGraphStore(conn).write(
        project_id, drafts, plan.vectors, event_id=event_id, observed_at=observed_at, resolve=resolve
    )


# ----------------------------------------------------------------------------------------------
# reads
# ----------------------------------------------------------------------------------------------
async def current_relations(
    db: Database, principal: Principal, node: Node | None, *, limit: int
) -> list[RelationRecord]:
    """The relations that hold now in the request's entity scope (v2 get_all `relations`)."""
    ids = entity_equalities(node)
    if not ids:  # no entity id equality to scope the graph by (an OR, a wildcard): no relations, never all
        return []
    async with db.connect() as conn:
        return await PostgresGraphStore(conn).current(principal.project_id, ids, limit=limit)


def query_grams(query: str) -> list[str]:
    """Every run of 1..MAX_GRAM words of the query, normalised as entity names are."""
    return _runs(name_key(query).split())


def written_grams(query: str) -> list[str]:
    """Every run of 1..MAX_GRAM words of the query as written, punctuation trimmed (aliases are stored as written)."""
    return _runs([w for w in (w.strip(".,;:!?\"'()[]") for w in query.split()) if w])


def _runs(words: list[str]) -> list[str]:
    return list(
        dict.fromkeys(" ".join(words[i : i + n]) for n in range(1, MAX_GRAM + 1) for i in range(len(words) - n + 1))
    )


async def search_relations(
    db: Database, providers: Providers, principal: Principal, query: str, node: Node | None, *, limit: int
) -> list[RelationRecord]:
    """Current relations of the entities the query names, with a 0..1 `score` (v2 search `relations`)."""
    ids = entity_equalities(node)
    if not ids:  # as current_relations: the graph is read only within named entity scopes
        return []
    vector = (await providers.embedder.embed([query]))[0]
    raw = [re.sub(r"\s+", " ", query.strip())]
    async with db.connect() as conn:
        return await PostgresGraphStore(conn).search(
            principal.project_id,
            ids,
            [*query_grams(query), *raw],
            vector,
            limit=limit,
            min_similarity=SEARCH_MIN_SIMILARITY,
        )


async def entity_timeline(
    db: Database, principal: Principal, name: str, ids: Mapping[str, str], *, at: datetime | None
) -> dict[str, Any]:
    """An entity's relations over time (the GET extension): its nodes in the scope, and every relation of
    them, current and retired, with both time axes; with `at`, only those that held then."""
    async with db.connect() as conn:
        store = PostgresGraphStore(conn)
        nodes = await store.nodes_named(principal.project_id, ids, name)
        if not nodes:
            raise NotFound(f"No graph entity named {name!r} in this scope")
        relations = await store.timeline(principal.project_id, [n.id for n in nodes], at=at)
    return {
        "name": name,
        "entities": [
            {
                "id": n.id,
                "name": n.name,
                "type": n.type,
                "aliases": list(n.aliases or []),
                **{c: getattr(n, c) for c in ENTITY_FIELDS},
                "created_at": n.created_at,
            }
            for n in nodes
        ],
        "at": at,
        "relations": [r.as_dict() for r in relations],
    }


async def scope_entities(
    db: Database, principal: Principal, ids: Mapping[str, str], *, prefix: str | None, limit: int
) -> list[dict[str, Any]]:
    """The scope's graph entities, busiest first, each with its relation count (and how many hold now)."""
    async with db.connect() as conn:
        rows = await PostgresGraphStore(conn).entities(principal.project_id, ids, prefix=prefix, limit=limit)
    return [
        {
            "id": r.id,
            "name": r.name,
            "type": r.type,
            "aliases": list(r.aliases or []),
            "relations": r.relations,
            "current": r.current,
        }
        for r in rows
    ]


async def delete_entity_node(db: Database, principal: Principal, node_id: int) -> int:
    """Delete one graph entity and its relations."""
    if not limits.is_row_id(node_id):
        raise NotFound("Graph entity not found")
    async with db.transaction() as conn:
        n = await PostgresGraphStore(conn).delete_node(principal.project_id, node_id)
    if not n:
        raise NotFound("Graph entity not found")
    return n


# ----------------------------------------------------------------------------------------------
# the Neo4j mirror
# ----------------------------------------------------------------------------------------------
async def enqueue_sync(conn: Connection, project_id: uuid.UUID, scopes: Sequence[Scope]) -> uuid.UUID:
    """Record, in the caller's transaction, that these scopes' graph must be mirrored (a GRAPH_SYNC job)."""
    job_id = uuid.uuid4()
    payload = {"scopes": [s.as_dict() for s in dict.fromkeys(scopes)]}
    # Not handed to a queue: the job runners' sweep takes it after the add commits (an outbox), so the
    # add never waits on Neo4j and an outage only delays the mirror.
    await JobRepository(conn).insert_pending(project_id, job_id, JobKind.GRAPH_SYNC, payload, dispatched=False)
    return job_id


async def sync_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """GRAPH_SYNC: copy the scopes' current graph from Postgres to the mirror (idempotent; a Neo4j outage
    fails the job, which is retried, and loses nothing: Postgres holds the graph)."""
    mirror = providers.graph_mirror
    scopes = [Scope(**s) for s in job.payload.get("scopes", [])]
    synced = 0
    if mirror is not None:
        async with db.connect() as conn:
            store = PostgresGraphStore(conn)
            for scope in scopes:
                records = await store.scope_relations(job.project_id, scope)
                await mirror.replace_scope(job.project_id, scope, records)
                synced += len(records)
    async with db.connect() as conn:
        await jobs.complete(JobRepository(conn), job, [], metadata={"relations_synced": synced})
